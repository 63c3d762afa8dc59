"""Benchmarks: scripts run as ``python bench/<name>.py``; figures in bench/RESULTS.md."""
