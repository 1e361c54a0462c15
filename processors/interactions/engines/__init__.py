"""Pure interaction protocol: parsing, validation and the outgoing event stream (no pipecat)."""
