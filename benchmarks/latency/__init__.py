"""Latency benchmark: scripted users, a timestamping transport, observers and reports."""
