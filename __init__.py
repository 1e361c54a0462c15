"""presence: real-time conversational video AI built on pipecat."""

__version__ = "0.1.0"
