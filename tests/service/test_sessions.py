"""Two conversations at once through the real offline pipeline: no cross-talk; recording.

The service runs with ``FileLauncher`` (tests/helpers/service.py): each conversation's own
pipeline (Silero, smart-turn, pocketsphinx, knowledge base, espeak-ng, warp renderer) hears its
own WAV through the file transport and reports through the same ``run_pipeline_session`` as a
browser call. Each persona has its own greeting and each user asks a different question; each
transcript must hold only its own.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import av
import numpy as np
from fastapi.testclient import TestClient
from helpers.service import KEY_A, FileLauncher, Receiver, make_settings
from helpers.speech import synthesize

from presence.service.app import create_app

SIZE = 128  # small video: two renderers share 2 cores with the rest of the suite
QUESTIONS = {"alpha": "how do I swap a provider?", "bravo": "what does the renderer do?"}
KEYWORDS = {"alpha": ("swap", "provider"), "bravo": ("render",)}


def question_wav(path: Path, text: str, lead_s: float = 4.0) -> Path:
    """Silence while the greeting plays, the question, then a little silence."""
    audio, rate = synthesize(text)
    pcm = np.concatenate([np.zeros(int(rate * lead_s), np.int16), audio, np.zeros(rate, np.int16)])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_two_concurrent_conversations_keep_their_own_transcripts(tmp_path):
    wavs = [question_wav(tmp_path / f"{n}.wav", q) for n, q in QUESTIONS.items()]
    launcher = FileLauncher(wavs, tmp_path / "file-out", fast=False)
    receiver = Receiver()
    receiver.up()
    app = create_app(make_settings(tmp_path), launcher=launcher)
    try:
        with TestClient(app, headers={"x-api-key": KEY_A}) as api:
            cids = {}
            for name in QUESTIONS:
                persona = api.post(
                    "/v2/personas",
                    json={
                        "persona_name": name,
                        "greeting": f"Hello, this is {name}.",
                        "layers": {"transport": {"video": {"width": SIZE, "height": SIZE}}},
                    },
                ).json()
                conv = api.post(
                    "/v2/conversations",
                    json={
                        "persona_id": persona["persona_id"],
                        "callback_url": receiver.url,
                        "properties": {"enable_recording": name == "alpha"},
                    },
                )
                assert conv.status_code == 200, conv.text
                cids[name] = conv.json()["conversation_id"]
            assert launcher.tasks.keys() == set(cids.values())  # both live at once

            def answered(cid):
                turns = api.get(f"/v2/conversations/{cid}").json()["transcript"]
                roles = [t["role"] for t in turns]
                return "user" in roles and roles.count("assistant") >= 2

            for cid in cids.values():
                wait(lambda cid=cid: answered(cid), 60, f"an answer in {cid}")
            for cid in cids.values():
                assert api.post(f"/v2/conversations/{cid}/end").status_code == 200

            for name, cid in cids.items():
                other = "bravo" if name == "alpha" else "alpha"
                transcript = api.get(f"/v2/conversations/{cid}").json()["transcript"]
                text = " ".join(t["content"].lower() for t in transcript)
                assert transcript[0]["content"] == f"Hello, this is {name}."
                assert other not in text, transcript
                users = " ".join(t["content"].lower() for t in transcript if t["role"] == "user")
                assert any(k in users for k in KEYWORDS[name]), transcript
                assert not any(k in users for k in KEYWORDS[other]), transcript

            state = api.get(f"/v2/conversations/{cids['alpha']}").json()
            assert state["recording_path"]
            events = receiver.wait_for(
                lambda es: (
                    sum(e["event_type"] == "application.transcription_ready" for e in es) == 2
                )
            )
            ready = [e for e in events if e["event_type"] == "application.recording_ready"]
            assert [e["conversation_id"] for e in ready] == [cids["alpha"]]
            assert api.get(f"/v2/conversations/{cids['bravo']}/recording").status_code == 404
            response = api.get(f"/v2/conversations/{cids['alpha']}/recording")
            assert response.status_code == 200
            mp4 = tmp_path / "alpha.mp4"
            mp4.write_bytes(response.content)
            check_recording(mp4, ready[0]["properties"]["duration"], question_at=4.0)
    finally:
        receiver.down()


def check_recording(path: Path, duration: float, *, question_at: float) -> None:
    """Video and audio as long as the call; the greeting and the user's question are audible."""
    with av.open(str(path)) as container:
        w, h = (
            container.streams.video[0].codec_context.width,
            container.streams.video[0].codec_context.height,
        )
        rate = container.streams.audio[0].codec_context.sample_rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        container.seek(0)
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert (w, h) == (SIZE, SIZE)
    video_s = len(frames) / 25
    assert abs(video_s - duration) < 0.2 and abs(pcm.size / rate - video_s) < 0.2
    assert video_s > question_at + 2
    assert np.mean(frames[len(frames) // 2]) > 20  # the face, not black
    windows = pcm[: int(video_s) * rate].reshape(-1, rate)
    rms = np.sqrt(np.mean(np.square(windows), axis=1))
    print("\nrecording rms per second:", np.round(rms, 3).tolist())
    assert rms[:2].max() > 0.01  # the greeting
    assert rms[int(question_at) : int(question_at) + 3].max() > 0.01  # the user's question
