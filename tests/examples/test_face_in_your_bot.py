"""Example (a), ``examples/face_in_your_bot.py``: a plain pipecat bot with the presence face.

Its ``bot()`` runs as written, with two stand-ins: ``create_transport`` returns presence's file
transport (the question WAV in, an MP4 out) and the OpenAI-compatible LLM is a local fake.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
from fakes.llm_script import Reply
from fakes.openai import FakeOpenAI

from presence.transports.file.transport import FileTransport

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUESTION = EXAMPLES / "assets/what-is-presence.wav"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_face_joins_a_plain_pipecat_pipeline(tmp_path, monkeypatch):
    example = load_example("face_in_your_bot")
    out = tmp_path / "answer.mp4"
    async with FakeOpenAI(Reply(text=["Presence is ", "a talking face."])) as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
        made: list[FileTransport] = []

        async def create_transport(runner_args, params):
            video = params["webrtc"]()  # the face's own params: what the transport must carry
            assert (video.video_out_width, video.video_out_is_live) == (256, False)
            made.append(FileTransport(QUESTION, out, width=256, height=256, fps=25))
            return made[0]

        monkeypatch.setattr(example, "create_transport", create_transport)
        await example.bot(SimpleNamespace())
    assert "presence" in json.dumps(llm.requests).lower()  # Whisper heard the question
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (256, 256)
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(out)) as container:
        audio = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
        rate = container.streams.audio[0].rate
    windows = audio[: len(audio) // 480 * 480].reshape(-1, 480)
    voiced = (np.sqrt((windows.astype(np.float64) ** 2).mean(axis=1)) > 0.01).sum()
    assert voiced * 480 / rate > 0.5, "Piper's answer must be in the MP4"
    assert abs(frames / 25 - len(audio) / rate) < 0.5  # the face kept pace with the voice
