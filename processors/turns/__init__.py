"""presence.processors.turns."""
