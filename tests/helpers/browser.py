"""Headless Chromium for end-to-end tests of the browser page (Debian ``chromium`` + ``chromium-driver``).

``chromium_driver(wav_path)`` starts Chromium with a fake microphone playing ``wav_path`` once
(``%noloop``) and a fake camera, media permissions granted, loopback allowed in peer connections and
every background network feature off, in a fresh profile. Use it from a thread (selenium blocks)::

    with chromium_driver(wav) as driver:
        driver.get(url)
        state = wait_for_page(driver, "p => p.remoteVideoFrames > 10")

``cue_microphone(driver)`` (before ``driver.get``) gives the page a microphone that stays silent until
the test calls ``say(driver, pcm, rate)``: the user speaks when the test decides (after a greeting),
not at a fixed time after the page asked for the microphone.

Without Chromium (or selenium) the test is skipped, unless the environment variable ``CI`` is set:
in CI a missing browser is a failure, because ``make test`` installs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_BINARIES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVERS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--window-size=1280,800",
)


def _first_existing(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).is_file() and os.access(p, os.X_OK)), None)


def find_chromium() -> tuple[str, str] | None:
    """``(browser, chromedriver)`` paths, or ``None`` when either is missing."""
    browser = _first_existing(CHROMIUM_BINARIES)
    driver = _first_existing(CHROMEDRIVERS) or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def require_chromium() -> tuple[str, str]:
    """The browser and driver paths; skips the test when absent, fails it when ``CI`` is set."""
    found = find_chromium()
    reason = None
    if found is None:
        reason = "Debian chromium + chromium-driver are not installed (apt-get install chromium chromium-driver)"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            reason = "selenium is not installed (pip install selenium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    assert found is not None
    return found


@contextmanager
def chromium_driver(
    wav_path: str | Path | None = None,
    *,
    y4m_path: str | Path | None = None,
    extra_args: tuple[str, ...] = (),
    page_load_timeout: float = 20.0,
) -> Iterator[Any]:
    """A selenium Chrome driver for headless Chromium, quit (and its profile removed) on exit.

    Args:
        wav_path: WAV the fake microphone plays once, then silence; ``None`` for Chromium's beep.
        y4m_path: Y4M/MJPEG file for the fake camera; ``None`` for Chromium's test pattern.
        extra_args: More Chromium flags.
        page_load_timeout: Seconds ``driver.get`` may take.

    Yields:
        A ``selenium.webdriver.Chrome`` instance.
    """
    browser, driver_path = require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="presence-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*BASE_FLAGS, f"--user-data-dir={profile}", *extra_args):
        options.add_argument(flag)
    if wav_path is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={Path(wav_path)}%noloop")
    if y4m_path is not None:
        options.add_argument(f"--use-file-for-fake-video-capture={Path(y4m_path)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


# The page's getUserMedia gets the fake camera as usual, and for audio a WebAudio track that plays
# what `window.__presenceMic.say(base64 PCM, rate)` is given (silence otherwise).
_CUED_MIC_JS = """
(() => {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return;
  const original = md.getUserMedia.bind(md);
  const mic = { said: 0, playing: false, ctx: null, dest: null };
  window.__presenceMic = mic;
  const ensure = () => {
    if (!mic.ctx) {
      mic.ctx = new AudioContext({ sampleRate: 48000 });
      mic.dest = mic.ctx.createMediaStreamDestination();
    }
    return mic;
  };
  mic.say = (b64, rate) => {
    const m = ensure();
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const pcm = new Int16Array(bytes.buffer);
    const buf = m.ctx.createBuffer(1, pcm.length, rate);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
    const src = m.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(m.dest);
    m.playing = true;
    src.onended = () => { m.playing = false; m.said += 1; };
    m.ctx.resume().then(() => src.start());
    return true;
  };
  md.getUserMedia = async (constraints) => {
    const wantsAudio = !!(constraints && constraints.audio);
    const video = constraints && constraints.video;
    const stream = video ? await original({ video }) : new MediaStream();
    if (wantsAudio) {
      const m = ensure();
      await m.ctx.resume();
      stream.addTrack(m.dest.stream.getAudioTracks()[0].clone());
    }
    return stream;
  };
})();
"""


def cue_microphone(driver: Any) -> None:
    """Give pages this driver opens a microphone that is silent until ``say`` (call before ``get``)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _CUED_MIC_JS})


def say(driver: Any, pcm: Any, rate: int, timeout: float = 30.0) -> None:
    """Play int16 mono ``pcm`` into the cued microphone and wait until it has been played."""
    import base64

    said = driver.execute_script("return window.__presenceMic.said;")
    b64 = base64.b64encode(pcm.astype("<i2").tobytes()).decode("ascii")
    assert driver.execute_script(
        "return window.__presenceMic.say(arguments[0], arguments[1]);", b64, rate
    )
    deadline = time.monotonic() + timeout
    while driver.execute_script("return window.__presenceMic.said;") <= said:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the cued microphone did not finish playing within {timeout:.0f} s"
            )
        time.sleep(0.1)


def page_state(driver: Any) -> dict[str, Any]:
    """A JSON copy of the page's ``window.presence`` (``{}`` before the page script ran)."""
    return driver.execute_script("return JSON.parse(JSON.stringify(window.presence || {}));")


def wait_for_page(
    driver: Any, predicate: str, timeout: float = 15.0, poll: float = 0.1
) -> dict[str, Any]:
    """Poll ``window.presence`` until the JavaScript ``predicate`` (``p => bool``) holds.

    Returns:
        The page state at the moment the predicate held.

    Raises:
        AssertionError: It did not hold within ``timeout``; the message shows the last state and
            the browser console.
    """
    script = f"const p = window.presence; return !!(p && ({predicate})(p));"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return page_state(driver)
        time.sleep(poll)
    state = page_state(driver)
    raise AssertionError(
        f"page never satisfied {predicate} within {timeout:.0f} s\nstate: {state}\n"
        f"console: {browser_console(driver)}"
    )


def browser_console(driver: Any) -> list[str]:
    """The browser console lines logged so far (drained)."""
    try:
        return [entry.get("message", "") for entry in driver.get_log("browser")]
    except Exception:  # not every driver supports logs
        return []


def send_interaction(driver: Any, conversation_id: str, event_type: str, **properties: Any) -> bool:
    """Send one interaction from the page (``window.presence.send``) on its data channel.

    Returns:
        Whether the page sent it (``False`` while its data channel is not open).
    """
    message = {
        "message_type": "conversation",
        "event_type": event_type,
        "conversation_id": conversation_id,
        "properties": properties,
    }
    return bool(driver.execute_script("return window.presence.send(arguments[0]);", message))
