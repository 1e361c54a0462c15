"""``layers`` of a persona: Tavus's layer blocks under Tavus's field names, plus presence's keys.

Each stage layer (``llm``, ``tts``, ``stt``, ``perception``, ``transport``) takes Tavus's fields
and, as extra keys, presence's own stage parameters (see ``_StageLayer``); ``presence.service.tavus``
maps the Tavus fields onto the pipeline. Sources: see ``presence.service.schemas``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


Level = Literal["low", "medium", "high"]
SttLevel = Literal["superlow", "verylow", "low", "medium", "high"]  # Sparrow-0's five


class _StageLayer(BaseModel):
    """A layer: Tavus's fields below, plus presence's own stage keys as extra fields.

    Extra keys (``provider``, ``voice``, ``model``, ...) are presence's stage parameters: with
    ``provider`` they replace the base pipeline's stage, without it they override its keys; the
    pipeline check refuses unknown ones with a 422 naming them.
    """

    model_config = ConfigDict(extra="allow")


class LLMLayer(_StageLayer):
    """``layers.llm``: Tavus's LLM fields (an OpenAI-compatible ``base_url`` selects ``openai``)."""

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    speculative_inference: bool | None = None
    tools: list[dict[str, Any]] | None = None
    headers: dict[str, str] | None = None
    extra_body: dict[str, Any] | None = None


class TTSLayer(_StageLayer):
    """``layers.tts``: Tavus's TTS fields (``tts_engine: elevenlabs`` selects ElevenLabs)."""

    tts_engine: Literal["cartesia", "elevenlabs", "playht", "azure"] | None = None
    api_key: str | None = None
    external_voice_id: str | None = None
    voice_id: str | None = None
    voice_settings: dict[str, Any] | None = None
    tts_emotion_control: bool | None = None
    tts_model_name: str | None = None
    playht_user_id: str | None = None
    pronunciation_dictionary_id: str | None = None


class STTLayer(_StageLayer):
    """``layers.stt``: Tavus's STT fields, including the legacy (Sparrow-0) turn-taking ones."""

    stt_engine: (
        Literal[
            "tavus-auto",
            "tavus-turbo",
            "tavus-advanced",
            "tavus-parakeet",
            "tavus-soniox",
            "tavus-whisper",
            "tavus-deepgram-medical",
        ]
        | None
    ) = None
    hotwords: str | None = None
    participant_pause_sensitivity: SttLevel | None = None
    participant_interrupt_sensitivity: SttLevel | None = None
    smart_turn_detection: bool | None = None


class PerceptionLayer(_StageLayer):
    """``layers.perception``: Tavus's Raven fields (raven-0 and raven-1 names)."""

    perception_model: Literal["raven-1", "raven-0", "basic", "off"] | None = None
    ambient_awareness_queries: list[str] | None = None
    visual_awareness_queries: list[str] | None = None
    audio_awareness_queries: list[str] | None = None
    perception_analysis_queries: list[str] | None = None
    perception_tool_prompt: str | None = None
    perception_tools: list[dict[str, Any]] | None = None
    visual_tool_prompt: str | None = None
    visual_tools: list[dict[str, Any]] | None = None
    audio_tool_prompt: str | None = None
    audio_tools: list[dict[str, Any]] | None = None


class ConversationalFlowLayer(_Request):
    """``layers.conversational_flow``: Tavus's turn-taking fields, or presence's ``vad``/``turn``."""

    turn_detection_model: Literal["sparrow-1", "sparrow-0", "time-based", "timebased"] | None = None
    turn_taking_patience: Level | None = None
    turn_commitment: Level | None = None
    replica_interruptibility: Level | None = None
    active_listening: Literal["off", "low", "medium", "high"] | None = None
    vad: dict[str, Any] | None = Field(default=None, description="presence: stages.vad keys.")
    turn: dict[str, Any] | None = Field(default=None, description="presence: stages.turn keys.")


class TransportLayer(_StageLayer):
    """``layers.transport``: Tavus's ``transport_type``, or presence's transport keys."""

    transport_type: str | None = None


class VQALayer(_Request):
    """``layers.vqa`` (legacy Tavus vision switch)."""

    enabled: bool | None = None


class Layers(_Request):
    """Per-stage settings mapped onto the base pipeline (Tavus's layers and presence's own).

    Each layer takes Tavus's field names (mapped by ``presence.service.tavus``) and presence's
    stage mapping as in a pipeline file: with ``provider`` it replaces the base pipeline's stage,
    without it its keys override the base stage's parameters. ``conversational_flow`` also takes
    ``{vad: {...}, turn: {...}}``; ``transport`` the pipeline's ``transport`` mapping (e.g.
    ``{kind: daily, ...}``). ``document_ids``/``document_tags`` are accepted here too, as
    Tavus's own create-persona example places them.
    """

    llm: LLMLayer | None = None
    tts: TTSLayer | None = None
    stt: STTLayer | None = None
    perception: PerceptionLayer | None = None
    conversational_flow: ConversationalFlowLayer | None = None
    transport: TransportLayer | None = None
    vqa: VQALayer | None = None
    document_ids: list[str] | None = None
    document_tags: list[str] | None = None
