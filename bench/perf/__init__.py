"""``python -m bench.perf`` (``make bench``): the performance suite with its figures and plots."""
