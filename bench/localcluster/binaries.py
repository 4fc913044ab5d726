"""Build, cache and locate the Go programs of the local test bench.

The bench needs real kube-apiserver, kube-controller-manager, kubectl, etcd, Jaeger v2, the
OpenTelemetry Collector (core distribution) and helm. None of them is shipped as a Python package, and
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
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

# --- Pinned versions -------------------------------------------------------------------

#: Kubernetes release the apiserver, controller-manager and kubectl are built from.
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
#: OpenTelemetry Collector Builder release; every component in the manifest uses the
#: matching core (v0.x) and contrib release. Not v0.164.0/v0.163.0: their OTLP exporters
#: import go.opentelemetry.io/collector/internal/statusutil, a module the reachable proxy
#: serves no version of, so v0.162.0 is the newest collector that builds here.
OTELCOL_BUILDER_VERSION = "v0.162.0"
#: Collector version of the built ``otelcol``. The sidecar image default is
#: ``otel/opentelemetry-collector:<OTELCOL_VERSION>`` so that a config validated against
#: this binary is the one the sidecar runs.
OTELCOL_VERSION = OTELCOL_BUILDER_VERSION.removeprefix("v")
#: Release of the contrib components (resource processor, health_check extension).
OTELCOL_CONTRIB_VERSION = OTELCOL_BUILDER_VERSION
#: Release of the confmap providers that goes with OTELCOL_BUILDER_VERSION (v1.x modules).
OTELCOL_PROVIDERS_VERSION = "v1.68.0"
#: helm v3 release.
HELM_VERSION = "v3.22.0"

#: Components in the built collector, by kind, as ``otelcol components`` names them: the
#: core distribution's (otel/opentelemetry-collector, which the sidecar image reproduces)
#: minus OTELCOL_MISSING_COMPONENTS. In this release the OTLP exporters' types are
#: ``otlp_grpc`` and ``otlp_http``; ``otlp`` and ``otlphttp`` are still accepted in
#: configs as deprecated aliases.
OTELCOL_COMPONENTS: Mapping[str, tuple[str, ...]] = {
    "receivers": ("nop", "otlp", "jaeger", "prometheus", "zipkin"),
    "processors": ("batch", "memory_limiter", "resource", "probabilistic_sampler"),
    "exporters": ("otlp_grpc", "otlp_http", "debug", "nop", "file", "prometheus_remote_write"),
    "extensions": ("health_check", "pprof", "zpages"),
    "connectors": ("forward",),
}
#: Components of the core distribution's manifest that the build leaves out: the module
#: proxy reachable here serves no v0.162.0 of a module each needs (hostmetrics:
#: internal/gopsutilenv; kafka receiver: pkg/kafka/configkafka; attributes, filter, span:
#: pkg/ottl/xottl and pkg/ottl/contexts/xprofile; the kafka, prometheus and zipkin
#: exporter modules themselves).
OTELCOL_MISSING_COMPONENTS: Mapping[str, tuple[str, ...]] = {
    "receivers": ("hostmetrics", "kafka"),
    "processors": ("attributes", "filter", "span"),
    "exporters": ("kafka", "prometheus", "zipkin"),
}
#: Build tags of the core distribution's manifest (dist.build_tags).
OTELCOL_BUILD_TAGS = "grpcnotrace"

#: Bumped whenever this module changes how a binary is built, to force a rebuild.
RECIPE_REVISION = "1"

#: Compile parallelism handed to ``go build -p``: the machine has two cores and the
#: Kubernetes compile wants about 2 GiB per parallel job.
GO_BUILD_PARALLELISM = 2

#: Every binary ensure_binaries() knows, by its plain name.
BINARY_NAMES: tuple[str, ...] = (
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "etcd",
    "jaeger",
    "otelcol",
    "helm",
)

CACHE_DIR_ENV = "OTEL_INJECTOR_CACHE_DIR"
BIN_DIR_ENV = "OTEL_INJECTOR_BIN_DIR"
KUBEBUILDER_ASSETS_ENV = "KUBEBUILDER_ASSETS"

_HEARTBEAT_SECONDS = 20.0


class BinaryBuildError(RuntimeError):
    """A bench binary could not be built; the message carries the tail of the go output."""


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

    def path(self, name: str) -> Path:
        """Return the path of the binary with plain name ``name`` (e.g. ``kube-apiserver``)."""
        if name not in BINARY_NAMES:
            raise ValueError(f"unknown binary {name!r}; known: {', '.join(BINARY_NAMES)}")
        value: Path = getattr(self, name.replace("-", "_"))
        return value


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- go.mod reading -----------------------------------------------------------------------


@dataclass
class _GoMod:
    """The parts of a go.mod file that the wrappers copy or check."""

    go: str = ""
    godebug: list[str] = dataclasses.field(default_factory=list)
    require: dict[str, str] = dataclasses.field(default_factory=dict)
    # (old path, old version or "", new path, new version or "" for a directory)
    replace: list[tuple[str, str, str, str]] = dataclasses.field(default_factory=list)
    exclude: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _parse_go_mod(text: str) -> _GoMod:
    """Parse the directives of a go.mod that the wrappers need.

    Handles single-line and block forms of ``godebug``, ``require``, ``replace`` and
    ``exclude``; other directives are ignored.
    """
    mod = _GoMod()
    block: str | None = None
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            _add_directive(mod, block, line)
            continue
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest == "(":
            block = verb
            continue
        if verb == "go":
            mod.go = rest
        else:
            _add_directive(mod, verb, rest)
    return mod


def _add_directive(mod: _GoMod, verb: str, args: str) -> None:
    fields = args.split()
    if verb == "godebug":
        mod.godebug.append(args)
    elif verb == "require" and len(fields) >= 2:
        mod.require[fields[0]] = fields[1]
    elif verb == "exclude" and len(fields) == 2:
        mod.exclude.append((fields[0], fields[1]))
    elif verb == "replace":
        left, _, right = args.partition("=>")
        lf, rf = left.split(), right.split()
        if lf and rf:
            mod.replace.append((lf[0], lf[1] if len(lf) > 1 else "", rf[0], rf[1] if len(rf) > 1 else ""))


def _is_local_target(path: str) -> bool:
    return path.startswith(("./", "../", "/"))


def _format_block(verb: str, lines: Sequence[str]) -> str:
    if not lines:
        return ""
    body = "\n".join(f"\t{line}" for line in lines)
    return f"{verb} (\n{body}\n)"


def _carried_overrides(dep: _GoMod, module: str) -> str:
    """Render the replaces/excludes a wrapper must repeat from a dependency's go.mod.

    Go ignores the replaces of a dependency. A replace that pins another module version
    is repeated so the build uses what the release was tested with; a replace to a local
    directory is dropped, which is only sound when the requirement it shadows names a
    real published version (checked here).
    """
    replaces: list[str] = []
    for old, old_v, new, new_v in dep.replace:
        if _is_local_target(new):
            required = dep.require.get(old)
            if required is not None and required.startswith("v0.0.0") and "-" not in required:
                raise BinaryBuildError(
                    f"{module} replaces {old} with local path {new} and requires it at "
                    f"{required}, which is not published; the wrapper needs an explicit "
                    "replacement for it"
                )
            continue
        left = f"{old} {old_v}".strip()
        replaces.append(f"{left} => {new} {new_v}".strip())
    parts = [_format_block("replace", replaces)]
    parts.append(_format_block("exclude", [f"{p} {v}" for p, v in dep.exclude]))
    return "\n\n".join(p for p in parts if p)


def _kubernetes_overrides(dep: _GoMod, module: str) -> str:
    """Point every staging module the release requires at its published tag.

    The list comes from the release's own go.mod: modules it replaces with
    ``./staging/...`` and requires at the unpublished v0.0.0. Staging modules the release
    does not require (e.g. sample-cli-plugin) are left out, as the proxy need not serve
    them. Any other local replace is handled like in :func:`_carried_overrides`.
    """
    staging: list[str] = []
    rest = _GoMod(go=dep.go, require=dep.require, exclude=dep.exclude)
    for entry in dep.replace:
        old, _, new, _ = entry
        if new.startswith("./staging/"):
            if dep.require.get(old) == "v0.0.0":
                staging.append(old)
        else:
            rest.replace.append(entry)
    if not staging:
        raise BinaryBuildError(f"{module}: found no staging modules in its go.mod")
    lines = [f"{m} => {m} {K8S_STAGING_VERSION}" for m in sorted(staging)]
    carried = _carried_overrides(rest, module)
    return "\n\n".join(p for p in (_format_block("replace", lines), carried) if p)


# --- build groups -------------------------------------------------------------------------


def _no_ldflags(release_time: str) -> list[str]:
    return []


@dataclass(frozen=True)
class _GoGroup:
    """Binaries built from one wrapper module around one published Go module.

    The wrapper's go.mod template is ``gomod/<key>.go.mod.tmpl``."""

    key: str
    module: str
    version: str
    packages: Mapping[str, str]  # binary name -> main package
    overrides: Callable[[_GoMod, str], str] = _carried_overrides
    ldflags: Callable[[str], list[str]] = _no_ldflags  # release time (RFC 3339) -> -X flags
    release: str = ""  # the release's own name, when it differs from the module version
    template_package: str = ""  # package holding gomod/<template>, when not this one

    @property
    def label(self) -> str:
        """The version part of the cache directory names."""
        return self.release or self.version

    @property
    def template(self) -> str:
        return f"{self.key}.go.mod.tmpl"


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


_KUBERNETES = _GoGroup(
    key="kubernetes",
    module="k8s.io/kubernetes",
    version=K8S_VERSION,
    packages={
        "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kubectl": "k8s.io/kubernetes/cmd/kubectl",
    },
    overrides=_kubernetes_overrides,
    ldflags=_k8s_ldflags,
)
_ETCD = _GoGroup(
    key="etcd", module="go.etcd.io/etcd/server/v3", version=ETCD_VERSION, packages={"etcd": "go.etcd.io/etcd/server/v3"}
)
_JAEGER = _GoGroup(
    key="jaeger",
    module="github.com/jaegertracing/jaeger",
    version=JAEGER_MODULE_VERSION,
    release=JAEGER_RELEASE,
    packages={"jaeger": "github.com/jaegertracing/jaeger/cmd/jaeger"},
    ldflags=_jaeger_ldflags,
)
_HELM = _GoGroup(
    key="helm",
    module="helm.sh/helm/v3",
    version=HELM_VERSION,
    packages={"helm": "helm.sh/helm/v3/cmd/helm"},
    ldflags=_helm_ldflags,
)
_OCB = _GoGroup(
    key="ocb",
    module="go.opentelemetry.io/collector/cmd/builder",
    version=OTELCOL_BUILDER_VERSION,
    packages={"ocb": "go.opentelemetry.io/collector/cmd/builder"},
)
_GO_GROUPS: tuple[_GoGroup, ...] = (_KUBERNETES, _ETCD, _JAEGER, _HELM)
# "-core": the core distribution's components; a cache slot of its own, apart from the
# minimal collector earlier revisions built under the plain version.
_OTELCOL_LABEL = f"{OTELCOL_BUILDER_VERSION}-core"
_OTELCOL_MANIFEST = "otelcol-builder.yaml.tmpl"


def _group_of(name: str) -> _GoGroup | None:
    for group in _GO_GROUPS:
        if name in group.packages:
            return group
    return None


def _label_of(name: str) -> str:
    group = _group_of(name)
    return group.label if group is not None else _OTELCOL_LABEL


# --- paths --------------------------------------------------------------------------------


def cache_root() -> Path:
    """Return the cache root: ``$OTEL_INJECTOR_CACHE_DIR`` or ``~/.cache/otel-injector``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "otel-injector"


def _cached_path(root: Path, name: str, label: str) -> Path:
    return root / "bin" / f"{name}-{label}" / name


def _override_path(name: str) -> Path | None:
    for env in (BIN_DIR_ENV, KUBEBUILDER_ASSETS_ENV):
        directory = os.environ.get(env)
        if not directory:
            continue
        candidate = Path(directory).expanduser() / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    return None


def _template_text(name: str, package: str = "") -> str:
    where = resources.files(package or __package__ or "bench.localcluster")
    return (where / "gomod" / name).read_text(encoding="utf-8")


def _recipe(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in (RECIPE_REVISION, *parts):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _group_recipe(group: _GoGroup) -> str:
    extra = K8S_STAGING_VERSION if group is _KUBERNETES else ""
    return _recipe(
        group.module,
        group.version,
        extra,
        _template_text(group.template, group.template_package),
        " ".join(group.ldflags("<release-time>")),
        " ".join(sorted(group.packages.values())),
    )


def _otelcol_recipe() -> str:
    return _recipe(
        OTELCOL_BUILDER_VERSION,
        OTELCOL_CONTRIB_VERSION,
        OTELCOL_PROVIDERS_VERSION,
        OTELCOL_VERSION,
        OTELCOL_BUILD_TAGS,
        _template_text(_OTELCOL_MANIFEST),
        _group_recipe(_OCB),
    )


def _is_current(binary: Path, recipe: str) -> bool:
    stamp = binary.parent / ".recipe"
    try:
        return binary.is_file() and stamp.read_text(encoding="utf-8").strip() == recipe
    except OSError:
        return False


# --- running go ---------------------------------------------------------------------------


def _go_executable() -> str:
    found = shutil.which("go")
    if found is None:
        raise BinaryBuildError("the `go` command is not on PATH; install Go 1.26 or later")
    return found


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries, as the upstream release builds are.
    env["CGO_ENABLED"] = "0"
    # The wrappers are standalone modules; a go.work further up must not leak in.
    env["GOWORK"] = "off"
    # The machine reaches no toolchain download site.
    env.setdefault("GOTOOLCHAIN", "local")
    return env


class _Runner:
    """Runs go commands for one component, logging stages and periodic progress."""

    def __init__(self, component: str, log: Callable[[str], None], log_file: Path) -> None:
        self.component = component
        self.log = log
        self.log_file = log_file
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        self.log(f"[bench-bin] {self.component}: {message} ({self.elapsed():.0f}s)")

    def run(self, stage: str, argv: Sequence[str], cwd: Path) -> str:
        """Run ``argv`` in ``cwd``; return its combined output or raise BinaryBuildError."""
        self.say(f"{stage}: {Path(argv[0]).name} {' '.join(argv[1:])}")
        lines: list[str] = []
        compiling = "build" in argv[1:2]
        counters = {"downloads": 0, "packages": 0}
        last = [""]
        with self.log_file.open("a", encoding="utf-8") as sink:
            sink.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n")
            sink.flush()
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=_go_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            if proc.stdout is None:  # pragma: no cover - PIPE always yields a stream
                raise BinaryBuildError("no output pipe from go")
            stream = proc.stdout

            def pump() -> None:
                for line in stream:
                    sink.write(line)
                    text = line.rstrip("\n")
                    lines.append(text)
                    if text.startswith("go: downloading"):
                        counters["downloads"] += 1
                    elif compiling and text and not text.startswith(("go:", "#", " ", "\t")):
                        # `go build -v` prints each package as it is compiled.
                        counters["packages"] += 1
                    last[0] = text

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            while True:
                try:
                    proc.wait(timeout=_HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    self.say(
                        f"{stage}: still running, {counters['downloads']} modules downloaded, "
                        f"{counters['packages']} packages built, last: {last[0][:100]!r}"
                    )
                except BaseException:
                    proc.kill()
                    proc.wait()
                    raise
            reader.join(timeout=10)
        if proc.returncode != 0:
            tail = "\n".join(lines[-60:])
            raise BinaryBuildError(
                f"{self.component}: {stage} failed (exit {proc.returncode}); full log: {self.log_file}\n{tail}"
            )
        self.say(f"{stage}: done ({counters['downloads']} modules downloaded, {counters['packages']} packages built)")
        return "\n".join(lines)


def _download_json(runner: _Runner, go: str, module: str, version: str, cwd: Path) -> dict[str, str]:
    out = runner.run("resolve release", [go, "mod", "download", "-json", f"{module}@{version}"], cwd)
    start = out.find("{")
    try:
        data = json.loads(out[start:])
    except (ValueError, json.JSONDecodeError) as exc:
        raise BinaryBuildError(f"cannot read `go mod download -json` output: {out[-2000:]}") from exc
    if not isinstance(data, dict) or data.get("Error") or not data.get("GoMod"):
        raise BinaryBuildError(f"{module}@{version} is not available: {data}")
    return {str(k): str(v) for k, v in data.items()}


def _seed_go_sum(target: Path, release_go_sum: Path) -> None:
    """Add the lines of the release's own go.sum to the wrapper's go.sum.

    The release's go.sum came inside its module zip, which Go verified against the
    checksum database, so its lines are as trustworthy as a fresh lookup. Seeding them
    means go only consults the checksum database for modules the release did not list;
    the database mirror reachable here answers 404 for many older versions.
    """
    lines: dict[str, None] = {}
    for source in (target, release_go_sum):
        with contextlib.suppress(OSError):
            lines.update(dict.fromkeys(ln for ln in source.read_text(encoding="utf-8").splitlines() if ln))
    target.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")


def _release_time(info_path: str) -> str:
    try:
        info = json.loads(Path(info_path).read_text(encoding="utf-8"))
        return str(info["Time"])
    except (OSError, ValueError, KeyError):
        return "1970-01-01T00:00:00Z"


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    path.write_text(text, encoding="utf-8")
    return True


@contextlib.contextmanager
def _build_lock(root: Path, log: Callable[[str], None]) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "build.lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"[bench-bin] waiting for another process's build (lock {root / 'build.lock'})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install(built: Path, root: Path, *, name: str, label: str, recipe: str, info: Mapping[str, object]) -> Path:
    """Move a freshly built binary into its cache slot with an atomic rename."""
    final = _cached_path(root, name, label)
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = final.parent / f".{name}.{os.getpid()}.tmp"
    shutil.move(str(built), staged)
    staged.chmod(0o755)
    os.replace(staged, final)
    # The stamp is written after the binary, so a crash in between only costs a rebuild.
    (final.parent / "build-info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    stamp = final.parent / f".recipe.{os.getpid()}.tmp"
    stamp.write_text(recipe + "\n", encoding="utf-8")
    os.replace(stamp, final.parent / ".recipe")
    return final


def _compile(
    runner: _Runner, go: str, *, ldflags: str, output: str, packages: Sequence[str], cwd: Path, tags: str = ""
) -> None:
    """``go build`` with the bench's parallelism, verbose progress and reproducible paths."""
    argv = [go, "build", "-p", str(GO_BUILD_PARALLELISM), "-v", "-trimpath", "-ldflags", ldflags, "-o", output]
    if tags:
        argv += ["-tags", tags]
    runner.run("compile", [*argv, *packages], cwd)


def _build_info(
    go: str,
    *,
    name: str,
    module: str,
    release: str,
    recipe: str,
    seconds: float,
    components: Mapping[str, list[str]] | None = None,
) -> dict[str, object]:
    """What ``build-info.json`` records about a finished binary."""
    info: dict[str, object] = {"name": name, "module": module, "release": release}
    if components is not None:
        info["components"] = components
    info.update(
        recipe=recipe,
        build_seconds=seconds,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        go=_go_version(go),
    )
    return info


def _build_go_group(group: _GoGroup, names: Sequence[str], root: Path, log: Callable[[str], None]) -> None:
    go = _go_executable()
    recipe = _group_recipe(group)
    workdir = root / "build" / f"{group.key}-{group.label}"
    workdir.mkdir(parents=True, exist_ok=True)
    runner = _Runner(",".join(names), log, workdir / "build.log")
    runner.say(f"building {group.module}@{group.version} (cold builds take minutes)")

    # Resolve the release in a directory without go.mod so that the query does not
    # touch the wrapper module.
    probe = workdir / "resolve"
    probe.mkdir(exist_ok=True)
    meta = _download_json(runner, go, group.module, group.version, probe)
    dep = _parse_go_mod(Path(meta["GoMod"]).read_text(encoding="utf-8"))
    gomod = Template(_template_text(group.template, group.template_package)).substitute(
        go_version=dep.go or "1.26.0",
        godebug="\n".join(f"godebug {line}" for line in dep.godebug),
        version=group.version,
        overrides=group.overrides(dep, group.module),
        tools="\n".join(f"\t{pkg}" for pkg in group.packages.values()),
    )
    _write_if_changed(workdir / "go.mod", gomod)
    _seed_go_sum(workdir / "go.sum", Path(meta["Dir"]) / "go.sum")
    runner.run("download modules (go mod tidy)", [go, "mod", "tidy"], workdir)

    ldflags = " ".join(["-s", "-w", *group.ldflags(_release_time(meta["Info"]))])
    out_dir = Path(tempfile.mkdtemp(prefix=".out-", dir=workdir))
    try:
        packages = [group.packages[n] for n in names]
        # One package is written to an explicit file name (go would name etcd's main
        # package "server"); several go into a directory under their package names,
        # which is how the Kubernetes commands are named.
        output = str(out_dir / names[0]) if len(names) == 1 else f"{out_dir}{os.sep}"
        _compile(runner, go, ldflags=ldflags, output=output, packages=packages, cwd=workdir)
        seconds = round(runner.elapsed(), 1)
        for name in names:
            built = out_dir / (name if len(names) == 1 else Path(group.packages[name]).name)
            if not built.is_file():
                raise BinaryBuildError(f"go build produced no {built.name} in {out_dir}")
            info = _build_info(
                go,
                name=name,
                module=f"{group.module}@{group.version}",
                release=group.label,
                recipe=recipe,
                seconds=seconds,
            )
            path = _install(built, root, name=name, label=group.label, recipe=recipe, info=info)
            runner.say(f"installed {path}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _go_version(go: str) -> str:
    try:
        return subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _otelcol_go_mod(manifest: str) -> str:
    """The go.mod of the generated collector: every ``gomod:`` of the manifest, plus otelcol."""
    required = [line.split("gomod:", 1)[1].strip() for line in manifest.splitlines() if "gomod:" in line]
    required.append(f"go.opentelemetry.io/collector/otelcol {OTELCOL_BUILDER_VERSION}")
    body = "\n".join(f"\t{line}" for line in required)
    return f"module otel-injector.local/bench/otelcol\n\ngo 1.25\n\nrequire (\n{body}\n)\n"


def _build_otelcol(root: Path, log: Callable[[str], None]) -> None:
    go = _go_executable()
    ocb = _cached_path(root, "ocb", _OCB.label)
    if not _is_current(ocb, _group_recipe(_OCB)):
        _build_go_group(_OCB, ["ocb"], root, log)

    workdir = root / "build" / f"otelcol-{_OTELCOL_LABEL}"
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "src"
    runner = _Runner("otelcol", log, workdir / "build.log")
    runner.say(f"building a collector with the builder {OTELCOL_BUILDER_VERSION}")
    manifest = Template(_template_text(_OTELCOL_MANIFEST)).substitute(
        otelcol_version=OTELCOL_VERSION,
        output_path=str(src),
        core=OTELCOL_BUILDER_VERSION,
        contrib=OTELCOL_CONTRIB_VERSION,
        providers=OTELCOL_PROVIDERS_VERSION,
    )
    (workdir / "builder.yaml").write_text(manifest, encoding="utf-8")
    # The builder only generates the sources. Its own module step runs a strict `go mod
    # tidy`, which fails here on modules that only the components' tests import (e.g.
    # fileexporter's tests need otlpencodingextension, which the proxy does not serve);
    # so the wrapper go.mod requires the manifest's modules and `go mod tidy -e` resolves
    # the rest. A module the build itself needs and cannot get still fails the compile.
    runner.run(
        "generate sources (ocb)",
        [str(ocb), "--config", str(workdir / "builder.yaml"), "--skip-compilation", "--skip-get-modules"],
        workdir,
    )
    _write_if_changed(src / "go.mod", _otelcol_go_mod(manifest))
    runner.run("download modules (go mod tidy -e)", [go, "mod", "tidy", "-e"], src)
    out_dir = Path(tempfile.mkdtemp(prefix=".out-", dir=workdir))
    try:
        _compile(
            runner,
            go,
            ldflags="-s -w",
            output=str(out_dir / "otelcol"),
            packages=["."],
            cwd=src,
            tags=OTELCOL_BUILD_TAGS,
        )
        info = _build_info(
            go,
            name="otelcol",
            module=f"{OTELCOL_BUILDER_VERSION} builder manifest",
            release=OTELCOL_VERSION,
            components={k: list(v) for k, v in OTELCOL_COMPONENTS.items()},
            recipe=_otelcol_recipe(),
            seconds=round(runner.elapsed(), 1),
        )
        path = _install(
            out_dir / "otelcol", root, name="otelcol", label=_OTELCOL_LABEL, recipe=_otelcol_recipe(), info=info
        )
        runner.say(f"installed {path}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


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
        return _group_recipe(group) if group is not None else _otelcol_recipe()

    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name in BINARY_NAMES:
        override = _override_path(name)
        if override is not None:
            paths[name] = override
            if name in wanted:
                log(f"[bench-bin] {name}: using {override} from the environment")
            continue
        paths[name] = _cached_path(root, name, _label_of(name))
        if name in wanted and not _is_current(paths[name], recipe_of(name)):
            missing.append(name)

    if missing:
        with _build_lock(root, log):
            # Another process may have finished the same build while this one waited.
            missing = [n for n in missing if not _is_current(paths[n], recipe_of(n))]
            for group in _GO_GROUPS:
                todo = [n for n in missing if n in group.packages]
                if todo:
                    _build_go_group(group, todo, root, log)
            if "otelcol" in missing:
                _build_otelcol(root, log)

    return Binaries(**{name.replace("-", "_"): paths[name] for name in BINARY_NAMES})


#: Build recipe of binaries defined outside this module (bench/peers), cached alike.
GoGroup = _GoGroup


def ensure_group(group: GoGroup, *, log: Callable[[str], None] = _stderr_log) -> dict[str, Path]:
    """Build (or find in the cache) every binary of ``group``, under the same lock, cache
    layout and recipe stamps as :func:`ensure_binaries`; return their paths by name."""
    root = cache_root()
    recipe = _group_recipe(group)
    paths = {name: _cached_path(root, name, group.label) for name in group.packages}
    if any(not _is_current(p, recipe) for p in paths.values()):
        with _build_lock(root, log):
            missing = [n for n, p in paths.items() if not _is_current(p, recipe)]
            if missing:
                _build_go_group(group, missing, root, log)
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
