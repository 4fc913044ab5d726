"""Kubernetes I/O and the in-cluster controllers: client, leader election, reconciler,
certificate keeper, and the ``stale`` report.
"""
