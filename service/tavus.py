"""Tavus CVI fields → presence's pipeline: what each documented field means here.

A persona's stored ``layers`` may mix Tavus's field names (``tts_engine``, ``turn_taking_patience``,
...) with presence's own stage keys (``provider``, ``voice``, ...). ``translate_layers`` turns
them into presence's own layer format (which ``presence.service.pipelines.layer_overrides``
makes into ``--set`` overrides) and a list of warnings, one sentence per field that has no
meaning here or is applied differently. Own keys win over values derived from Tavus fields.

Mapping (Tavus docs: see ``presence.service.schemas``):

- ``llm``: ``base_url`` (+ ``model``, ``api_key``) selects the ``openai`` provider; a non-Tavus
  ``model`` without ``base_url`` does too (OpenAI's API) when a key is at hand; ``tavus-*``
  models keep the pipeline's LLM; ``speculative_inference`` → ``stages.turn.speculative``;
  ``extra_body.temperature``/``max_tokens`` → the cloud LLM's parameters.
- ``tts``: ``tts_engine: elevenlabs`` selects ElevenLabs (``external_voice_id`` → ``voice_id``,
  ``tts_model_name`` → ``model``, ``voice_settings`` speed/stability/similarity_boost/style)
  when a key is given or ``ELEVENLABS_API_KEY`` is set. Engines presence lacks (``cartesia``,
  ``playht``, ``azure``) are accepted and keep the pipeline's voice, with a warning that names
  the engines presence has: refusing them would break the most common Tavus request (Cartesia is
  Tavus's default engine), and the warning in the response says what is spoken instead.
- ``stt``: ``tavus-whisper`` → ``whisper``; ``hotwords`` → the STT's hot words (whisper
  ``hotwords``, deepgram ``keyterms``, pocketsphinx ``extra_phrases``); the Sparrow-0 fields map
  like their conversational-flow successors (inverted, as Tavus's migration table says).
- ``conversational_flow``: ``sparrow-*`` → ``smart-turn``, ``time-based`` → ``speech-timeout``;
  ``turn_taking_patience`` → the turn's silence (smart-turn ``stop_secs`` 0.6/1.0/2.0 s,
  speech-timeout ``user_speech_timeout`` 0.4/0.6/1.2 s for low/medium/high);
  ``replica_interruptibility`` → VAD ``start_secs`` 0.5/0.2/0.1 s (speech needed to interrupt).
- ``perception``: ``off`` → ``off``; ``raven-*``/``basic`` → presence's offline ``opencv``
  perception (face, attention, smile events), with a warning that it is not Raven.

Each distinct warning is logged once per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from loguru import logger

from presence.processors.turns import sensitivity
from presence.service import layer_schemas, schemas

_OFFLINE = {"llm": ("knowledge-base",), "tts": ("piper", "espeak"), "stt": ("whisper",)}
_HOTWORDS = {"whisper": "hotwords", "deepgram": "keyterms", "pocketsphinx": "extra_phrases"}
_ELEVENLABS_SETTINGS = ("speed", "stability", "similarity_boost", "style")
_logged: set[str] = set()


def _tavus_fields(model: type) -> set[str]:
    return set(model.model_fields)


_FIELDS = {
    "llm": _tavus_fields(layer_schemas.LLMLayer),
    "tts": _tavus_fields(layer_schemas.TTSLayer),
    "stt": _tavus_fields(layer_schemas.STTLayer),
    "perception": _tavus_fields(layer_schemas.PerceptionLayer),
    "transport": _tavus_fields(layer_schemas.TransportLayer),
}


@dataclass
class Translation:
    """Presence's own layers for a persona plus what could not be applied."""

    layers: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Record a warning (and log it the first time this process sees it)."""
        if message not in self.warnings:
            self.warnings.append(message)
        if message not in _logged:
            _logged.add(message)
            logger.warning(f"Tavus compatibility: {message}")


def base_providers(pipeline: Path) -> dict[str, str]:
    """``{stage: provider}`` of a pipeline file (empty for a stage it does not name)."""
    try:
        raw = yaml.safe_load(Path(pipeline).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    stages = raw.get("stages") or {}
    return {
        name: str(spec.get("provider"))
        for name, spec in stages.items()
        if isinstance(spec, dict) and spec.get("provider") is not None
    }


def _split(layer: dict[str, Any] | None, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(own, tavus)`` keys of one stored layer."""
    layer = dict(layer or {})
    names = _FIELDS.get(stage, set())
    tavus = {k: v for k, v in layer.items() if k in names and v is not None}
    own = {k: v for k, v in layer.items() if k not in names}
    return own, tavus


def _has_key(given: str | None, env: str) -> bool:
    return bool((given or "").strip() or os.environ.get(env, "").strip())


class _Builder:
    """Builds one persona's translation; ``stage(name)`` is presence's layer being filled."""

    def __init__(self, base: dict[str, str]):
        self.base = base
        self.out = Translation()
        self.derived: dict[str, dict[str, Any]] = {}

    def stage(self, name: str) -> dict[str, Any]:
        return self.derived.setdefault(name, {})

    def provider(self, name: str) -> str | None:
        """The provider a stage will run: a derived switch, else the base pipeline's."""
        return self.derived.get(name, {}).get("provider") or self.base.get(name)

    def switch(self, name: str, provider: str) -> None:
        """Select ``provider`` for a stage (keeping the base's offline provider as fallback)."""
        if self.base.get(name) == provider:
            return
        spec = self.stage(name)
        spec["provider"] = provider
        base = self.base.get(name)
        if base in _OFFLINE.get(name, ()):
            spec.setdefault("fallback", [{"provider": base}])

    def warn(self, message: str) -> None:
        self.out.warn(message)


def _llm(b: _Builder, t: dict[str, Any], own: dict[str, Any]) -> None:
    model, base_url, key = t.get("model"), t.get("base_url"), t.get("api_key")
    if "provider" in own:  # presence's own stage: these names are its parameters too
        b.stage("llm").update({k: t[k] for k in ("model", "base_url", "api_key") if k in t})
    else:
        hosted = bool(model and model.startswith("tavus-"))
        if hosted:
            b.warn(
                f"layers.llm.model {model!r} is a Tavus-hosted model; presence keeps the "
                f"pipeline's LLM ({b.provider('llm')}); give base_url/model/api_key for an "
                "OpenAI-compatible one"
            )
        cloud = b.provider("llm") in ("openai", "anthropic")
        if base_url or (model and not hosted and not cloud):
            if base_url or _has_key(key, "OPENAI_API_KEY"):
                b.switch("llm", "openai")
            else:
                b.warn(
                    f"layers.llm.model {model!r} without base_url means OpenAI's API, which "
                    "needs layers.llm.api_key or OPENAI_API_KEY on the server; presence keeps "
                    f"the pipeline's LLM ({b.provider('llm')}) until then"
                )
        if b.provider("llm") in ("openai", "anthropic"):
            spec = b.stage("llm")
            for name, value in (("base_url", base_url), ("api_key", key)):
                if value:
                    spec[name] = value
            if model and not hosted:
                spec["model"] = model
    if t.get("speculative_inference") is not None:
        b.stage("turn")["speculative"] = bool(t["speculative_inference"])
    for name, value in (t.get("extra_body") or {}).items():
        if name in ("temperature", "max_tokens") and b.provider("llm") in ("openai", "anthropic"):
            b.stage("llm")[name] = value
        else:
            b.warn(
                f"layers.llm.extra_body.{name} is not applied: presence passes temperature "
                f"and max_tokens to a cloud LLM only (this persona's LLM: {b.provider('llm')})"
            )
    if t.get("tools"):
        b.warn(
            "layers.llm.tools are stored but not offered to the LLM: presence does not send "
            "tool calls to the client; declare server-side tools (python/http) in `tools`"
        )
    if t.get("headers"):
        b.warn(
            "layers.llm.headers are not applied: presence's LLM providers send no custom headers"
        )


def _tts(b: _Builder, t: dict[str, Any], own: dict[str, Any]) -> None:
    engine = t.get("tts_engine")
    if "provider" in own and t.get("api_key"):
        b.stage("tts")["api_key"] = t["api_key"]
    if "provider" not in own:
        if engine == "elevenlabs":
            if _has_key(t.get("api_key"), "ELEVENLABS_API_KEY"):
                b.switch("tts", "elevenlabs")
            else:
                b.warn(
                    "layers.tts.tts_engine 'elevenlabs' needs layers.tts.api_key or "
                    "ELEVENLABS_API_KEY on the server; presence speaks with the pipeline's "
                    f"voice ({b.provider('tts')}) until then"
                )
        elif engine is not None:
            b.warn(
                f"layers.tts.tts_engine {engine!r} is not available in presence; it speaks with "
                f"the pipeline's voice ({b.provider('tts')}); presence has tts_engine "
                "'elevenlabs' and the providers piper, espeak, elevenlabs (layers.tts.provider)"
            )
    voice_keys = ("external_voice_id", "tts_model_name", "api_key", "voice_settings")
    if b.provider("tts") == "elevenlabs" and "provider" not in own:
        spec = b.stage("tts")
        for src, dst in (("external_voice_id", "voice_id"), ("tts_model_name", "model")):
            if t.get(src):
                spec[dst] = t[src]
        if t.get("api_key"):
            spec["api_key"] = t["api_key"]
        for name, value in (t.get("voice_settings") or {}).items():
            if name in _ELEVENLABS_SETTINGS:
                spec[name] = value
            else:
                b.warn(f"layers.tts.voice_settings.{name} is not applied (ElevenLabs takes "
                       f"{', '.join(_ELEVENLABS_SETTINGS)} here)")  # fmt: skip
    elif any(t.get(k) for k in voice_keys) and engine is None:
        given = ", ".join(k for k in voice_keys if t.get(k))
        b.warn(f"layers.tts {given} apply to tts_engine 'elevenlabs' only; not applied to "
               f"the pipeline's voice ({b.provider('tts')})")  # fmt: skip
    if t.get("tts_emotion_control"):
        b.warn("layers.tts.tts_emotion_control is Cartesia's; not applied")
    if t.get("pronunciation_dictionary_id"):
        b.warn("layers.tts.pronunciation_dictionary_id is a Tavus-hosted dictionary; not applied")
    for name in ("voice_id", "playht_user_id"):
        if t.get(name):
            b.warn(f"layers.tts.{name} is not applied (Tavus voice catalog / PlayHT only)")


def _stt(b: _Builder, t: dict[str, Any], own: dict[str, Any]) -> dict[str, str]:
    """Map the STT layer; returns Sparrow-0 settings for the flow mapping to pick up."""
    engine = t.get("stt_engine")
    if engine == "tavus-whisper" and "provider" not in own:
        b.switch("stt", "whisper")
    elif engine not in (None, "tavus-auto", "tavus-whisper"):
        b.warn(
            f"layers.stt.stt_engine {engine!r} is Tavus-hosted; presence transcribes with the "
            f"pipeline's STT ({b.provider('stt')})"
        )
    if t.get("hotwords"):
        target = _HOTWORDS.get(own.get("provider") or b.provider("stt") or "")
        if target:
            b.stage("stt")[target] = [t["hotwords"]]
        else:
            b.warn(f"layers.stt.hotwords are not applied to the {b.provider('stt')} STT")
    legacy: dict[str, str] = {}
    if t.get("participant_pause_sensitivity"):
        legacy["turn_taking_patience"] = sensitivity.PAUSE_TO_PATIENCE[
            t["participant_pause_sensitivity"]
        ]
    if t.get("participant_interrupt_sensitivity"):
        level = t["participant_interrupt_sensitivity"]
        legacy["replica_interruptibility"] = sensitivity.INTERRUPT_TO_INTERRUPTIBILITY[level]
    for key in ("participant_pause_sensitivity", "participant_interrupt_sensitivity"):
        if t.get(key) in ("verylow", "superlow"):
            b.warn(f"layers.stt.{key} {t[key]!r} applies as 'low', the lowest presence has")
    if t.get("smart_turn_detection") is not None:
        legacy["turn_detection_model"] = "sparrow-0" if t["smart_turn_detection"] else "time-based"
    return legacy


def _flow(b: _Builder, flow: dict[str, Any]) -> None:
    model = flow.get("turn_detection_model")
    if model and not (flow.get("turn") or {}).get("provider"):
        b.switch("turn", "smart-turn" if model.startswith("sparrow") else "speech-timeout")
    patience = flow.get("turn_taking_patience")
    if patience:
        turn = (flow.get("turn") or {}).get("provider") or b.provider("turn")
        if turn in sensitivity.PATIENCE:
            name, values = sensitivity.PATIENCE[turn]
            b.stage("turn")[name] = values[patience]
        else:
            b.warn(f"conversational_flow.turn_taking_patience is not applied to turn {turn!r}")
    level = flow.get("replica_interruptibility")
    if level:
        if b.provider("vad") == "silero":
            b.stage("vad")["start_secs"] = sensitivity.INTERRUPT_START_SECS[level]
        else:
            b.warn("conversational_flow.replica_interruptibility needs the silero VAD")
    if flow.get("turn_commitment"):
        b.warn("conversational_flow.turn_commitment is not applied (presence does not barge in)")
    if flow.get("active_listening") not in (None, "off"):
        b.warn("conversational_flow.active_listening is not applied (no backchannels)")


def _perception(b: _Builder, t: dict[str, Any], own: dict[str, Any]) -> None:
    model = t.get("perception_model")
    if model and "provider" not in own:
        if model == "off":
            b.switch("perception", "off")
        else:
            if b.provider("perception") in (None, "off"):
                b.switch("perception", "opencv")
            b.warn(
                f"layers.perception.perception_model {model!r}: presence runs its own perception "
                f"({b.provider('perception')}: face, attention and smile events), not Raven"
            )
    rest = sorted(k for k in t if k != "perception_model")
    if rest:
        b.warn(f"layers.perception {', '.join(rest)} are stored but not applied (Raven only)")


def translate_layers(layers: dict[str, Any] | None, base: dict[str, str]) -> Translation:
    """Presence's own layers and the warnings for a persona's stored (Tavus or own) layers.

    Args:
        layers: The persona's ``layers`` as stored (request JSON).
        base: ``{stage: provider}`` of the pipeline the layers apply to (``base_providers``).
    """
    layers = layers or {}
    b = _Builder(base)
    own_layers: dict[str, dict[str, Any]] = {}
    for stage in ("llm", "tts", "stt", "perception"):
        own_layers[stage], _ = _split(layers.get(stage), stage)
    flow = dict(layers.get("conversational_flow") or {})
    llm_own, llm_t = _split(layers.get("llm"), "llm")
    _llm(b, llm_t, llm_own)
    tts_own, tts_t = _split(layers.get("tts"), "tts")
    _tts(b, tts_t, tts_own)
    stt_own, stt_t = _split(layers.get("stt"), "stt")
    legacy = _stt(b, stt_t, stt_own)
    _flow(b, {**legacy, **{k: v for k, v in flow.items() if v is not None}})
    per_own, per_t = _split(layers.get("perception"), "perception")
    _perception(b, per_t, per_own)
    transport_own, transport_t = _split(layers.get("transport"), "transport")
    if transport_t.get("transport_type"):
        b.warn(
            f"layers.transport.transport_type {transport_t['transport_type']!r} is not applied; "
            "presence serves its own page, or Daily with layers.transport.kind 'daily'"
        )
    if (layers.get("vqa") or {}).get("enabled"):
        b.warn("layers.vqa is not applied (presence's vision is layers.perception)")

    out: dict[str, Any] = {}
    for stage in ("llm", "tts", "stt", "perception"):
        merged = {**b.derived.get(stage, {}), **own_layers[stage]}
        if merged:
            out[stage] = merged
    own_flow = {k: flow.get(k) for k in ("vad", "turn") if flow.get(k)}
    for key in ("vad", "turn"):
        merged = {**b.derived.get(key, {}), **(own_flow.get(key) or {})}
        if merged:
            out.setdefault("conversational_flow", {})[key] = merged
    if transport_own:
        out["transport"] = transport_own
    b.out.layers = out
    return b.out


def persona_field_warnings(pipeline_mode: str | None) -> list[str]:
    """Warnings for a persona's top-level Tavus fields presence has no counterpart for."""
    t = Translation()
    if pipeline_mode == "echo":
        t.warn(
            "pipeline_mode 'echo' is not applied: presence runs the full pipeline; "
            "conversation.echo interactions still make the replica say a given text"
        )
    return t.warnings


def conversation_warnings(body: schemas.ConversationCreate) -> list[str]:
    """Warnings for a conversation request's Tavus fields that have no meaning in presence."""
    t = Translation()
    p = body.properties
    if body.audio_only:
        t.warn("audio_only is not applied: the replica's video is always sent")
    if body.enable_dynamic_greeting:
        t.warn(
            "enable_dynamic_greeting is not applied: the persona opens with custom_greeting, "
            "else its own greeting"
        )
    if body.max_participants not in (None, 2):
        t.warn("max_participants is not applied: a presence conversation is one-to-one")
    if p.language.lower() not in ("english", "en"):
        t.warn(
            f"properties.language {p.language!r} is not applied: the pipeline speaks the "
            "language its STT and TTS are set to (English by default); set them in the layers"
        )
    if p.enable_closed_captions is False:
        t.warn("properties.enable_closed_captions false: presence's page always shows captions")
    if p.apply_greenscreen:
        t.warn("properties.apply_greenscreen is not applied: the replica keeps its background")
    if p.recording_s3_bucket_name or p.recording_s3_bucket_region or p.aws_assume_role_arn:
        t.warn(
            "properties.recording_s3_bucket_name/_region/aws_assume_role_arn are not applied: "
            "recordings go to the server's bucket (PRESENCE_S3_BUCKET)"
        )
    return t.warnings
