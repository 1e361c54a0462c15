"""Renderer engines: pure numpy/torch, no pipecat."""
