"""presence.processors.perception."""
