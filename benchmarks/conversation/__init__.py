"""Conversation benchmark: spoken questions through a real pipeline, scored as a user would."""
