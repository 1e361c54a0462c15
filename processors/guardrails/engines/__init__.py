"""Pure guardrail matching and sentence screening (no pipecat)."""
