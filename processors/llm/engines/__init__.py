"""Pure engines of the LLM stage (no pipecat): knowledge-base retrieval and the offline responder."""
