"""Benchmarks (`python -m ops.bench`) and their kit."""
