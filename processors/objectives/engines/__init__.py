"""Pure objective criteria and progress tracking (no pipecat)."""
