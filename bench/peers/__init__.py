"""The peers section of the benchmark: otel-injector, Istio's injector, Kyverno and the
zero-work limit on one local control plane (``python -m bench --sections peers``)."""
