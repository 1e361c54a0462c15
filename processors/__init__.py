"""presence.processors."""
