"""Benchmarks: throughput, latency and memory as ratios against baselines measured in the same run."""
