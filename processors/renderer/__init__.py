"""presence.processors.renderer."""
