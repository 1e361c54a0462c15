"""Speech-to-text engines: pure recognizers with no pipecat import."""
