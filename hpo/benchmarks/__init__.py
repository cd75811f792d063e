"""Benchmarks that are run by hand and committed as results (never timed tests)."""
