"""``make bench``: measurements behind BENCHMARKS.md (see bench/run_bench.py)."""
