"""presence.processors.llm."""
