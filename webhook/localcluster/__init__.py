"""A real local Kubernetes control plane for tests and demos.

:mod:`webhook.localcluster.binaries` builds and caches the Go programs (kube-apiserver,
kube-controller-manager, kubectl, etcd, Jaeger v2, a minimal otelcol, helm) from their
published Go modules; :mod:`webhook.localcluster.controlplane` runs them on loopback.
"""
