"""Benchmarks: `python -m hpo.benchmarks.<name>`."""
