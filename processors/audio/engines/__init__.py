"""Engines of the audio processors (no pipecat here)."""
