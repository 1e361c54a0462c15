"""Perception engines: pure numpy/OpenCV/SDK code, no pipecat."""
