"""Guardrails: phrases and topics a persona must not say or answer, enforced before TTS."""
