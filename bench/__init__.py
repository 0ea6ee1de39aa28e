"""Benchmarks: never timed tests; each compares Myna with another implementation in one run."""
