"""Interactions: Tavus-CVI-shaped conversation messages over the data channel, in and out."""
