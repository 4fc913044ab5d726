"""A real local Kubernetes control plane for tests and demos.

:mod:`bench.localcluster.binaries` builds and caches the Go programs (kube-apiserver,
kube-controller-manager, kubectl, etcd, Jaeger v2, the core-distribution otelcol, helm) from their
published Go modules; :mod:`bench.localcluster.controlplane` runs them on loopback;
:mod:`bench.localcluster.images` builds the node's container images (pause, collector,
demo app) as docker archives.
"""
