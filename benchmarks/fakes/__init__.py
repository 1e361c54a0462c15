"""Scripted providers with known latencies, so a benchmark can tell framework time from provider time.

Registered as ``provider: scripted`` for the ``stt``, ``llm`` and ``tts`` stages::

    stt: {provider: scripted, final_after_ms: 150}
    llm: {provider: scripted, ttft_ms: 300, tokens_per_s: 50, reply: "Sure. Here you go."}
    tts: {provider: scripted, ttfb_ms: {dist: normal, mean: 200, std: 20}, chunk_ms: 40}

A delay is a fixed number of milliseconds or a distribution, ``{dist: normal, mean, std, min}`` or
``{dist: uniform, low, high}``, drawn from a generator seeded with the stage's ``seed``.

Every fake writes what it actually waited into the metadata of the frame the wait produced, so an
observer can subtract it without knowing the configuration:

* ``TranscriptionFrame.metadata["scripted_delay_ms"]``: speech end → final transcript;
* ``LLMTextFrame.metadata["scripted_elapsed_ms"]``: request → this token (TTFT + streaming);
* first ``TTSAudioRawFrame`` of a sentence, ``metadata["scripted_ttfb_ms"]`` and
  ``metadata["scripted_text_at_ns"]`` (pipeline clock when the sentence reached the TTS).

The STT finds speech by energy (int16 RMS above ``voice_rms``) and finalizes each stretch of speech
``final_after_ms`` after its last voiced chunk. Its text is, in order of preference, the
``metadata["script_text"]`` of the voiced audio (the benchmark's scripted user sets it), the next
of ``texts``, or ``text``.
"""

from __future__ import annotations

from presence.benchmarks.fakes.delays import (
    Delay,
    NormalDelay,
    UniformDelay,
    mean_delay,
    sample_delay,
)
from presence.benchmarks.fakes.llm import ScriptedLLMService
from presence.benchmarks.fakes.providers import (
    ScriptedLLMParams,
    ScriptedSTTParams,
    ScriptedTTSParams,
    build_llm,
    build_stt,
    build_tts,
)
from presence.benchmarks.fakes.stt import ScriptedSTTService
from presence.benchmarks.fakes.tts import ScriptedTTSService

__all__ = [
    "Delay",
    "NormalDelay",
    "ScriptedLLMParams",
    "ScriptedLLMService",
    "ScriptedSTTParams",
    "ScriptedSTTService",
    "ScriptedTTSParams",
    "ScriptedTTSService",
    "UniformDelay",
    "build_llm",
    "build_stt",
    "build_tts",
    "mean_delay",
    "sample_delay",
]
