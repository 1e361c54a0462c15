"""Processors on the user's audio before any stage hears it."""
