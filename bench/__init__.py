"""``make bench``: the measurements behind BENCHMARKS.md (``python -m bench.run_bench``; see its docstring)."""
