"""presence.processors.tts."""
