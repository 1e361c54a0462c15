"""presence.benchmarks."""
