"""presence.framework."""
