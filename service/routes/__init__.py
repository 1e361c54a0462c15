"""REST routes of the conversations service."""
