"""``python -m bench.demo`` (``make demo``): the user's story on a real local cluster."""
