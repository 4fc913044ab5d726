"""Build, cache and locate the Go programs of the local test bench.

The bench needs real kube-apiserver, kube-controller-manager, kubectl, etcd, Jaeger v2, a
the OpenTelemetry Collector (core distribution) and helm, and for a node kubelet, kube-scheduler, kube-proxy,
containerd (with ctr and the runc shim), the CNI plugins and CoreDNS, and BuildKit
(buildkitd, buildctl) to build the injector's image. runc itself is Debian's
(``make node-tools``). None of them is shipped as a Python package, and
the machine reaches no download site, so each is compiled from its published Go module
with the ordinary ``go`` client and kept in a per-version cache outside the repository:

    $OTEL_INJECTOR_CACHE_DIR (default ~/.cache/otel-injector)
        bin/<name>-<version>/<name>       finished binaries (plus .recipe, build-info.json)
        build/<group>-<version>/          wrapper modules, generated sources, build logs
        build.lock                        serialises builds across processes

A binary is rebuilt only when its recipe changes: the pinned versions below, the wrapper
template or the build flags. Builds hold an exclusive file lock (one build at a time: the
machine has two cores) and finished binaries are moved into place with an atomic rename,
so two processes asking at once never see a half-written file.

An existing binary can be used instead of a build: if ``OTEL_INJECTOR_BIN_DIR`` or
``KUBEBUILDER_ASSETS`` (the envtest convention) names a directory holding an executable
with the plain name (``etcd``, ``kube-apiserver``, ...), that file is used and nothing is
built for it.

How one group is built lives in :mod:`bench.localcluster.gobuild`; reading a release's
go.mod in :mod:`bench.localcluster.gomodfile`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.localcluster.gobuild import (
    GoGroup,
    build_go_group,
    build_lock,
    cached_path,
    group_recipe,
    is_current,
)
from bench.localcluster.gomodfile import BinaryBuildError, GoMod, staging_overrides
from bench.localcluster.otelcolbuild import (
    OTELCOL_BUILDER_VERSION,
    OTELCOL_COMPONENTS,
    OTELCOL_LABEL,
    OTELCOL_MISSING_COMPONENTS,
    OTELCOL_VERSION,
    build_otelcol,
    otelcol_recipe,
)

__all__ = [
    "BINARY_NAMES",
    "OTELCOL_BUILDER_VERSION",
    "OTELCOL_COMPONENTS",
    "OTELCOL_MISSING_COMPONENTS",
    "OTELCOL_VERSION",
    "Binaries",
    "BinaryBuildError",
    "GoGroup",
    "cache_root",
    "ensure_binaries",
    "ensure_group",
    "main",
]

# --- Pinned versions -------------------------------------------------------------------

#: Kubernetes release the apiserver, controller-manager, kubectl, scheduler, kubelet and
#: kube-proxy are built from (one wrapper module, one go build).
K8S_VERSION = "v1.36.3"
#: Tag under which the staging modules (k8s.io/api, k8s.io/client-go, ...) of
#: K8S_VERSION are published.
K8S_STAGING_VERSION = "v0.36.3"
#: Latest v3.6 patch release of the etcd server.
ETCD_VERSION = "v3.6.16"
#: Jaeger release that is built, as Jaeger itself names it.
JAEGER_RELEASE = "v2.13.0"
#: Module version of github.com/jaegertracing/jaeger for JAEGER_RELEASE. Jaeger tags v2
#: releases without a /v2 module path; up to v2.13.0 each v2 release carries a twin v1
#: tag on the same commit (v1.76.0 = v2.13.0). Later releases can only be required as a
#: pseudo-version of their commit, and the module proxy reachable here serves none of
#: those, so this is the newest Jaeger v2 it can build.
JAEGER_MODULE_VERSION = "v1.76.0"

#: helm v3 release.
HELM_VERSION = "v3.22.0"
#: containerd 2.4, with the CRI plugin; 2.x pins pod network namespaces under its own state
#: dir and implements the RuntimeConfig call kubelet 1.36 makes.
CONTAINERD_VERSION = "v2.4.2"
#: Build tags of upstream's static build: no btrfs, devmapper or zfs snapshotters (cgo).
CONTAINERD_TAGS = ("no_btrfs", "no_devmapper", "no_zfs")
#: CNI reference plugins (bridge, host-local, loopback, portmap).
CNI_PLUGINS_VERSION = "v1.10.0"
#: CoreDNS, built from its own main package with every in-tree plugin.
COREDNS_VERSION = "v1.15.0"
#: BuildKit (buildkitd and buildctl), the newest v0.34 patch the module proxy serves; it
#: builds the injector's own image from the top-level Dockerfile (images/injector.py).
BUILDKIT_VERSION = "v0.34.2"


#: Every binary ensure_binaries() knows, by its plain name.
BINARY_NAMES: tuple[str, ...] = (
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "etcd",
    "jaeger",
    "otelcol",
    "helm",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "containerd",
    "ctr",
    "containerd-shim-runc-v2",
    "bridge",
    "host-local",
    "loopback",
    "portmap",
    "coredns",
    "buildkitd",
    "buildctl",
)
#: The binaries only a node needs; a suite without nodes can leave them out.
#: The binaries that build the injector's image (images/injector.py).
IMAGE_BUILD_BINARY_NAMES: tuple[str, ...] = ("buildkitd", "buildctl")
NODE_BINARY_NAMES: tuple[str, ...] = tuple(n for n in BINARY_NAMES[7:] if n not in IMAGE_BUILD_BINARY_NAMES)

CACHE_DIR_ENV = "OTEL_INJECTOR_CACHE_DIR"
BIN_DIR_ENV = "OTEL_INJECTOR_BIN_DIR"
KUBEBUILDER_ASSETS_ENV = "KUBEBUILDER_ASSETS"


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the bench binaries.

    Every field is filled, but only the binaries that were requested from
    :func:`ensure_binaries` are guaranteed to exist.
    """

    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    etcd: Path
    jaeger: Path
    otelcol: Path
    helm: Path
    kube_scheduler: Path
    kubelet: Path
    kube_proxy: Path
    containerd: Path
    ctr: Path
    containerd_shim_runc_v2: Path
    bridge: Path
    host_local: Path
    loopback: Path
    portmap: Path
    coredns: Path
    buildkitd: Path
    buildctl: Path

    def path(self, name: str) -> Path:
        """Return the path of the binary with plain name ``name`` (e.g. ``kube-apiserver``)."""
        if name not in BINARY_NAMES:
            raise ValueError(f"unknown binary {name!r}; known: {', '.join(BINARY_NAMES)}")
        value: Path = getattr(self, name.replace("-", "_"))
        return value


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- build groups -------------------------------------------------------------------------


def _k8s_ldflags(release_time: str) -> list[str]:
    major, minor = K8S_VERSION.removeprefix("v").split(".")[:2]
    flags: list[str] = []
    # Without these the binaries report v0.0.0-master; client-go's copy is what kubectl
    # prints as its client version.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={K8S_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={release_time}",
        ]
    return flags


def _jaeger_ldflags(release_time: str) -> list[str]:
    pkg = "github.com/jaegertracing/jaeger/internal/version"
    return [
        f"-X {pkg}.latestVersion={JAEGER_RELEASE}",
        f"-X {pkg}.commitSHA={JAEGER_MODULE_VERSION}",
        f"-X {pkg}.date={release_time}",
    ]


def _helm_ldflags(release_time: str) -> list[str]:
    pkg = "helm.sh/helm/v3/internal/version"
    return [f"-X {pkg}.version={HELM_VERSION}", f"-X {pkg}.gitTreeState=clean"]


def _kubernetes_overrides(dep: GoMod, module: str) -> str:
    return staging_overrides(dep, module, K8S_STAGING_VERSION)


def _containerd_ldflags(release_time: str) -> list[str]:
    pkg = "github.com/containerd/containerd/v2/version"
    return [f"-X {pkg}.Version={CONTAINERD_VERSION}", f"-X {pkg}.Revision={CONTAINERD_VERSION}"]


def _cni_ldflags(release_time: str) -> list[str]:
    return [f"-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion={CNI_PLUGINS_VERSION}"]


def _coredns_ldflags(release_time: str) -> list[str]:
    return [f"-X github.com/coredns/coredns/coremain.GitCommit={COREDNS_VERSION}"]


def _buildkit_ldflags(release_time: str) -> list[str]:
    pkg = "github.com/moby/buildkit/version"
    return [f"-X {pkg}.Version={BUILDKIT_VERSION}", f"-X {pkg}.Package=github.com/moby/buildkit"]


_KUBERNETES = GoGroup(
    key="kubernetes",
    module="k8s.io/kubernetes",
    version=K8S_VERSION,
    packages={
        "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kubectl": "k8s.io/kubernetes/cmd/kubectl",
        "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        "kubelet": "k8s.io/kubernetes/cmd/kubelet",
        "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
    },
    overrides=_kubernetes_overrides,
    ldflags=_k8s_ldflags,
    recipe_extra=K8S_STAGING_VERSION,
)
_ETCD = GoGroup(
    key="etcd", module="go.etcd.io/etcd/server/v3", version=ETCD_VERSION, packages={"etcd": "go.etcd.io/etcd/server/v3"}
)
_JAEGER = GoGroup(
    key="jaeger",
    module="github.com/jaegertracing/jaeger",
    version=JAEGER_MODULE_VERSION,
    release=JAEGER_RELEASE,
    packages={"jaeger": "github.com/jaegertracing/jaeger/cmd/jaeger"},
    ldflags=_jaeger_ldflags,
)
_HELM = GoGroup(
    key="helm",
    module="helm.sh/helm/v3",
    version=HELM_VERSION,
    packages={"helm": "helm.sh/helm/v3/cmd/helm"},
    ldflags=_helm_ldflags,
)
_CONTAINERD = GoGroup(
    key="containerd",
    module="github.com/containerd/containerd/v2",
    version=CONTAINERD_VERSION,
    packages={
        "containerd": "github.com/containerd/containerd/v2/cmd/containerd",
        "ctr": "github.com/containerd/containerd/v2/cmd/ctr",
        "containerd-shim-runc-v2": "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
    },
    ldflags=_containerd_ldflags,
    tags=CONTAINERD_TAGS,
)
_CNI = GoGroup(
    key="cni",
    module="github.com/containernetworking/plugins",
    version=CNI_PLUGINS_VERSION,
    packages={
        "bridge": "github.com/containernetworking/plugins/plugins/main/bridge",
        "host-local": "github.com/containernetworking/plugins/plugins/ipam/host-local",
        "loopback": "github.com/containernetworking/plugins/plugins/main/loopback",
        "portmap": "github.com/containernetworking/plugins/plugins/meta/portmap",
    },
    ldflags=_cni_ldflags,
)
_COREDNS = GoGroup(
    key="coredns",
    module="github.com/coredns/coredns",
    version=COREDNS_VERSION,
    packages={"coredns": "github.com/coredns/coredns"},
    ldflags=_coredns_ldflags,
)
_BUILDKIT = GoGroup(
    key="buildkit",
    module="github.com/moby/buildkit",
    version=BUILDKIT_VERSION,
    packages={
        "buildkitd": "github.com/moby/buildkit/cmd/buildkitd",
        "buildctl": "github.com/moby/buildkit/cmd/buildctl",
    },
    ldflags=_buildkit_ldflags,
)
_GO_GROUPS: tuple[GoGroup, ...] = (_KUBERNETES, _ETCD, _JAEGER, _HELM, _CONTAINERD, _CNI, _COREDNS, _BUILDKIT)


def _group_of(name: str) -> GoGroup | None:
    for group in _GO_GROUPS:
        if name in group.packages:
            return group
    return None


def _label_of(name: str) -> str:
    group = _group_of(name)
    return group.label if group is not None else OTELCOL_LABEL


# --- paths --------------------------------------------------------------------------------


def cache_root() -> Path:
    """Return the cache root: ``$OTEL_INJECTOR_CACHE_DIR`` or ``~/.cache/otel-injector``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "otel-injector"


def _override_path(name: str) -> Path | None:
    for env in (BIN_DIR_ENV, KUBEBUILDER_ASSETS_ENV):
        directory = os.environ.get(env)
        if not directory:
            continue
        candidate = Path(directory).expanduser() / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    return None


# --- public API ---------------------------------------------------------------------------


def ensure_binaries(
    names: Iterable[str] | None = None,
    *,
    log: Callable[[str], None] = _stderr_log,
) -> Binaries:
    """Make the requested bench binaries available and return the paths of all of them.

    ``names`` is a subset of :data:`BINARY_NAMES` (``None`` means all). Each requested
    binary is taken from ``$OTEL_INJECTOR_BIN_DIR`` or ``$KUBEBUILDER_ASSETS`` if one of
    them holds an executable of that name, else from the cache if it was built with the
    current recipe, else it is built now (under a file lock; progress goes to ``log``).
    On return every requested path exists; paths of binaries not requested are where
    they would be cached and may not exist. Raises ValueError for an unknown name and
    BinaryBuildError when a build fails.
    """
    wanted = list(dict.fromkeys(BINARY_NAMES if names is None else names))
    unknown = [n for n in wanted if n not in BINARY_NAMES]
    if unknown:
        raise ValueError(f"unknown binaries {unknown}; known: {', '.join(BINARY_NAMES)}")
    root = cache_root()

    def recipe_of(name: str) -> str:
        group = _group_of(name)
        return group_recipe(group) if group is not None else otelcol_recipe()

    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name in BINARY_NAMES:
        override = _override_path(name)
        if override is not None:
            paths[name] = override
            if name in wanted:
                log(f"[bench-bin] {name}: using {override} from the environment")
            continue
        paths[name] = cached_path(root, name, _label_of(name))
        if name in wanted and not is_current(paths[name], recipe_of(name)):
            missing.append(name)

    if missing:
        with build_lock(root, log):
            # Another process may have finished the same build while this one waited.
            missing = [n for n in missing if not is_current(paths[n], recipe_of(n))]
            for group in _GO_GROUPS:
                todo = [n for n in missing if n in group.packages]
                if todo:
                    build_go_group(group, todo, root, log)
            if "otelcol" in missing:
                build_otelcol(root, log)

    return Binaries(**{name.replace("-", "_"): paths[name] for name in BINARY_NAMES})


def ensure_group(group: GoGroup, *, log: Callable[[str], None] = _stderr_log) -> dict[str, Path]:
    """Build (or find in the cache) every binary of a group defined elsewhere (bench/peers),
    under the same lock, cache layout and recipe stamps as :func:`ensure_binaries`; return
    their paths by name."""
    root = cache_root()
    expected = group_recipe(group)
    paths = {name: cached_path(root, name, group.label) for name in group.packages}
    if any(not is_current(p, expected) for p in paths.values()):
        with build_lock(root, log):
            missing = [n for n, p in paths.items() if not is_current(p, expected)]
            if missing:
                build_go_group(group, missing, root, log)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: build the named binaries (default: all) and print ``name<TAB>path`` lines."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.localcluster.binaries",
        description="Build (or find in the cache) the Go binaries of the local test bench.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"binaries to build (default: all of {', '.join(BINARY_NAMES)})",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        binaries = ensure_binaries(args.names or None)
    except (BinaryBuildError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in args.names or BINARY_NAMES:
        print(f"{name}\t{binaries.path(name)}")
    print(f"[bench-bin] done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
