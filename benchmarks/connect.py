"""Connect benchmark: from the browser's offer to the persona's first frame on the page.

The page (``transports/web/app.js``) times each call in ``window.presence.timing`` (milliseconds
since Connect was pressed: ``offer_sent``, ``answer``, ``ice_connected``, ``connected``,
``channel_open``, ``first_frame`` …) and ``window.presence.connectMs`` (offer sent → first persona
frame painted, measured with ``requestVideoFrameCallback``). ``measure_connects`` clicks Connect,
waits for that frame, hangs up, and repeats; ``summarize`` turns the calls into percentiles.

Run against ``presence run`` (the offline pipeline) in headless Chromium::

    python -m presence.benchmarks.connect --runs 10 --out benchmarks/results/connect.json

It needs Debian's ``chromium`` + ``chromium-driver`` and ``selenium`` (the ``dev`` extra), and
starts ``presence run PIPELINE --port 0`` itself. Each connect after the first waits ``pause_s``
after the previous hang-up, as a person would; the server builds the next session's stages in
that time (``presence.framework.runtime.SpareStages``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STEPS = ("answer", "ice_connected", "connected", "channel_open", "first_frame")


def _state(driver: Any) -> dict[str, Any]:
    return driver.execute_script("return JSON.parse(JSON.stringify(window.presence || {}));")


def _wait(driver: Any, predicate: str, timeout: float) -> dict[str, Any]:
    script = f"const p = window.presence; return !!(p && ({predicate})(p));"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return _state(driver)
        time.sleep(0.05)
    raise TimeoutError(
        f"the page never satisfied {predicate} within {timeout:g} s: {_state(driver)}"
    )


def measure_connects(
    driver: Any, url: str, runs: int = 3, pause_s: float = 2.0, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Connect ``runs`` times from the page at ``url``; each call's timeline, in order.

    Args:
        driver: A selenium driver of a browser with a (fake) camera and microphone.
        url: The page.
        runs: Calls to make.
        pause_s: Seconds to wait after each hang-up.
        timeout: Seconds one call may take to show its first persona frame.

    Returns:
        One ``{"connect_ms": offer → first frame, "timing": {...}}`` per call.

    Raises:
        TimeoutError: A call showed no persona frame in time, or did not hang up.
    """
    driver.get(url)
    _wait(driver, "p => p.state === 'idle'", timeout)
    calls = []
    for _ in range(runs):
        driver.find_element("id", "connect").click()
        state = _wait(driver, "p => p.connectMs !== null", timeout)
        calls.append({"connect_ms": state["connectMs"], "timing": state["timing"]})
        driver.find_element("id", "hangup").click()
        _wait(driver, "p => p.state === 'disconnected'", timeout)
        time.sleep(pause_s)
    return calls


def summarize(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p90/max of offer → first frame, and p50 of offer → each step of the handshake."""
    ms = np.asarray([c["connect_ms"] for c in calls], dtype=float)
    steps = {}
    for step in STEPS:
        values = [
            c["timing"][step] - c["timing"]["offer_sent"] for c in calls if step in c["timing"]
        ]
        if values:
            steps[step] = round(float(np.percentile(values, 50)))
    return {
        "runs": len(calls),
        "offer_to_first_frame_ms": {
            "p50": round(float(np.percentile(ms, 50))),
            "p90": round(float(np.percentile(ms, 90))),
            "max": round(float(ms.max())),
        },
        "offer_to_step_p50_ms": steps,
    }


def _chromium(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/lib/chromium/chromium"
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Serve ``presence run`` on a free loopback port, connect ``--runs`` times, print a JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default=str(REPO / "pipelines/local.yaml"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds after each hang-up")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, "-m", "presence.framework.cli", "run", args.pipeline, "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        url = ""
        while not url.startswith("http"):
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                raise SystemExit("presence run exited before serving the page")
            url = line.strip()
        with tempfile.TemporaryDirectory(prefix="presence-connect-") as profile:
            driver = _chromium(profile)
            try:
                calls = measure_connects(driver, url, runs=args.runs, pause_s=args.pause)
            finally:
                driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=15)
    result = {
        "command": "python -m presence.benchmarks.connect " + " ".join(argv or sys.argv[1:]),
        "pipeline": Path(args.pipeline).name,
        "pause_s": args.pause,
        **summarize(calls),
        "calls": calls,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
