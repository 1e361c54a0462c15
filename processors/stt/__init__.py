"""presence.processors.stt."""
