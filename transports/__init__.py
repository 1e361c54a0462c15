"""presence.transports."""
