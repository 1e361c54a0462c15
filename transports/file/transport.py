"""``FileTransport``: a deterministic session from a WAV (plus optional camera clip) to an MP4 + JSON.

Assembly (the builder's usual chain)::

    transport = FileTransport("question.wav", "out/reply.mp4", fast=True)
    worker = PipelineWorker(
        Pipeline([transport.input(), ..., transport.output(), ...]),
        params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=24000),
        observers=[transport.observer],
        idle_timeout_secs=None,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()
    # out/reply.mp4 and out/reply.json now exist

The input ends the run by itself (``EndWorkerFrame``); see ``input.py`` for when. The output
writes ``reply.mp4``; when it is closed, ``reply.json`` (same stem) is written with the
transcript observer's report and input/output metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import BaseTransport, TransportParams

from presence.framework.errors import InputError
from presence.framework.observers.transcript import TranscriptObserver
from presence.transports.file.clock import SessionClock
from presence.transports.file.input import FileInputTransport
from presence.transports.file.media import CameraReader, load_wav_info
from presence.transports.file.output import FileOutputTransport


class FileTransport(BaseTransport):
    """Feeds a WAV into the pipeline and records the persona's reply as an MP4.

    Args:
        input_wav: The user's audio (PCM WAV; converted to 16 kHz mono, see ``load_wav``).
        output_mp4: Where to write the persona's audio and video; the report goes beside it
            as ``<stem>.json``.
        camera: Optional ``.y4m``/``.mp4`` clip pushed as the user's camera
            (``UserImageRawFrame``, source ``"camera"``) at its own frame rate.
        width: Output video width (even).
        height: Output video height (even).
        fps: Output video frame rate.
        audio_in_sample_rate: Rate of the audio fed to the pipeline.
        audio_out_sample_rate: Rate of the persona audio written to the MP4.
        fast: Run faster than real time where content is known (see ``clock.py``).
        end_grace_s: Media seconds of quiet after the last reply before the run ends.
        max_tail_s: Media seconds after the WAV ends at which the run ends regardless.
        observer: Transcript observer to report from; a new one on this session's clock if None.
        poster: RGB image shown until the pipeline's first image (e.g. the replica's portrait);
            black when None.

    Raises:
        InputError: The WAV or camera clip is unusable (the message says what to export).
    """

    def __init__(
        self,
        input_wav: str | Path,
        output_mp4: str | Path,
        *,
        camera: str | Path | None = None,
        width: int = 512,
        height: int = 512,
        fps: int = 25,
        audio_in_sample_rate: int = 16000,
        audio_out_sample_rate: int = 24000,
        fast: bool = False,
        end_grace_s: float = 1.5,
        max_tail_s: float = 30.0,
        observer: TranscriptObserver | None = None,
        poster: np.ndarray | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.output_mp4 = Path(output_mp4)
        if self.output_mp4.suffix.lower() != ".mp4":
            raise InputError(f"output file must end in .mp4, got {self.output_mp4.name}")
        self.report_path = self.output_mp4.with_suffix(".json")
        try:
            self.output_mp4.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the output folder {self.output_mp4.parent}: {exc}"
            ) from None
        if not os.access(self.output_mp4.parent, os.W_OK):
            raise InputError(f"cannot write to the output folder {self.output_mp4.parent}")
        self.fast = fast
        self.clock = SessionClock(audio_in_sample_rate)
        self.pcm, _, self.wav_info = load_wav_info(input_wav, audio_in_sample_rate)
        self._camera = CameraReader(camera) if camera is not None else None
        self.observer = observer or TranscriptObserver(clock=self.clock.at)
        self._params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=audio_in_sample_rate,
            audio_out_enabled=True,
            audio_out_sample_rate=audio_out_sample_rate,
            audio_out_10ms_chunks=1,
            audio_out_end_silence_secs=0,
            video_in_enabled=self._camera is not None,
            video_out_enabled=True,
            video_out_is_live=False,
            video_out_width=width,
            video_out_height=height,
            video_out_framerate=fps,
        )
        self._end_grace_s = end_grace_s
        self._max_tail_s = max_tail_s
        self._poster = poster
        self.report_sections: dict[str, Callable[[], Any]] = {}
        """Extra sections of ``<stem>.json``: name → function called when the report is written."""
        self._input: FileInputTransport | None = None
        self._output: FileOutputTransport | None = None

    @property
    def camera_fps(self) -> float | None:
        """Frame rate of the camera clip, or None without one."""
        return self._camera.fps if self._camera is not None else None

    def input(self) -> FrameProcessor:
        """The processor that feeds the WAV (and camera) and ends the run."""
        if self._input is None:
            self._input = FileInputTransport(
                self.pcm,
                self._params,
                self.clock,
                camera=self._camera,
                fast=self.fast,
                end_grace_s=self._end_grace_s,
                max_tail_s=self._max_tail_s,
                name=f"{self.name}#input",
            )
        return self._input

    def output(self) -> FrameProcessor:
        """The processor that writes the MP4 (and, once closed, the JSON report)."""
        if self._output is None:
            self._output = FileOutputTransport(
                self.output_mp4,
                self._params,
                self.clock,
                on_finished=self._write_report,
                poster=self._poster,
                name=f"{self.name}#output",
            )
        return self._output

    def session_report(self, output_summary: dict | None = None) -> dict:
        """The transcript report plus input/output metadata (what ``<stem>.json`` holds)."""
        report = self.observer.report()
        info = self.wav_info
        report["input"] = {
            "path": info.path,
            "duration_s": round(len(self.pcm) / self.clock.sample_rate, 3),
            "original_sample_rate": info.sample_rate,
            "original_channels": info.channels,
            "original_format": info.format,
            "sample_rate": self.clock.sample_rate,
            "camera": str(self._camera.path) if self._camera is not None else None,
        }
        report["output"] = output_summary or (
            self._output.summary if self._output is not None else None
        )
        report["session"] = {
            "fast": self.fast,
            "media_duration_s": round(self.clock.now(), 3),
            "end_reason": self._input.end_reason if self._input is not None else None,
        }
        for name, section in self.report_sections.items():
            report[name] = section()
        return report

    def _write_report(self, output_summary: dict) -> None:
        report = self.session_report(output_summary)
        self.report_path.parent.mkdir(parents=True, exist_ok=True)
        self.report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        logger.info(f"wrote {self.output_mp4} and {self.report_path.name}")
