"""Speech synthesis engines for the TTS stage (no pipecat imports)."""
