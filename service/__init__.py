"""presence.service."""
