"""How a bench binary is built: wrapper modules, ``go build``, the cache slot and its lock.

One :class:`GoGroup` is a set of binaries built from one wrapper module around one
published module (see :mod:`bench.localcluster.binaries` for the groups and versions).
:func:`build_go_group` resolves the release, writes the wrapper's go.mod from its template
and the release's own go.mod, seeds go.sum, runs ``go mod tidy`` and one ``go build`` for
all requested binaries, and moves each into its cache slot with an atomic rename, stamped
with the recipe it was built from.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from bench.localcluster.gomodfile import BinaryBuildError, GoMod, carried_overrides, parse_go_mod

#: Bumped whenever this module changes how a binary is built, to force a rebuild.
RECIPE_REVISION = "1"

#: Compile parallelism handed to ``go build -p``: the machine has two cores and the
#: Kubernetes compile wants about 2 GiB per parallel job.
GO_BUILD_PARALLELISM = 2

_HEARTBEAT_SECONDS = 20.0


def _no_ldflags(release_time: str) -> list[str]:
    return []


@dataclass(frozen=True)
class GoGroup:
    """Binaries built from one wrapper module around one published Go module.

    The wrapper's go.mod template is ``gomod/<key>.go.mod.tmpl``."""

    key: str
    module: str
    version: str
    packages: Mapping[str, str]  # binary name -> main package
    overrides: Callable[[GoMod, str], str] = carried_overrides
    ldflags: Callable[[str], list[str]] = _no_ldflags  # release time (RFC 3339) -> -X flags
    release: str = ""  # the release's own name, when it differs from the module version
    tags: tuple[str, ...] = ()  # go build -tags
    recipe_extra: str = ""  # anything else the build depends on (e.g. the staging tag)
    template_package: str = ""  # package holding gomod/<template>, when not bench.localcluster (bench.peers)

    @property
    def label(self) -> str:
        """The version part of the cache directory names."""
        return self.release or self.version

    @property
    def template(self) -> str:
        return f"{self.key}.go.mod.tmpl"


def cached_path(root: Path, name: str, label: str) -> Path:
    return root / "bin" / f"{name}-{label}" / name


def template_text(name: str, package: str = "") -> str:
    where = resources.files(package or __package__ or "bench.localcluster")
    return (where / "gomod" / name).read_text(encoding="utf-8")


def recipe(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in (RECIPE_REVISION, *parts):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def group_recipe(group: GoGroup) -> str:
    parts = [
        group.module,
        group.version,
        group.recipe_extra,
        template_text(group.template, group.template_package),
        " ".join(group.ldflags("<release-time>")),
        " ".join(sorted(group.packages.values())),
    ]
    # Only when set, so groups without tags keep the recipes (and cache slots) they had.
    if group.tags:
        parts.append(" ".join(group.tags))
    return recipe(*parts)


def is_current(binary: Path, expected: str) -> bool:
    stamp = binary.parent / ".recipe"
    try:
        return binary.is_file() and stamp.read_text(encoding="utf-8").strip() == expected
    except OSError:
        return False


# --- running go ---------------------------------------------------------------------------


def go_executable() -> str:
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


class Runner:
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


def download_json(runner: Runner, go: str, module: str, version: str, cwd: Path) -> dict[str, str]:
    out = runner.run("resolve release", [go, "mod", "download", "-json", f"{module}@{version}"], cwd)
    start = out.find("{")
    try:
        data = json.loads(out[start:])
    except (ValueError, json.JSONDecodeError) as exc:
        raise BinaryBuildError(f"cannot read `go mod download -json` output: {out[-2000:]}") from exc
    if not isinstance(data, dict) or data.get("Error") or not data.get("GoMod"):
        raise BinaryBuildError(f"{module}@{version} is not available: {data}")
    return {str(k): str(v) for k, v in data.items()}


def seed_go_sum(target: Path, release_go_sum: Path) -> None:
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


def release_time(info_path: str) -> str:
    try:
        info = json.loads(Path(info_path).read_text(encoding="utf-8"))
        return str(info["Time"])
    except (OSError, ValueError, KeyError):
        return "1970-01-01T00:00:00Z"


def write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    path.write_text(text, encoding="utf-8")
    return True


@contextlib.contextmanager
def build_lock(root: Path, log: Callable[[str], None]) -> Iterator[None]:
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


def install(built: Path, root: Path, *, name: str, label: str, recipe: str, info: Mapping[str, object]) -> Path:
    """Move a freshly built binary into its cache slot with an atomic rename."""
    final = cached_path(root, name, label)
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


def compile_packages(
    runner: Runner,
    go: str,
    *,
    ldflags: str,
    output: str,
    packages: Sequence[str],
    cwd: Path,
    tags: Sequence[str] = (),
) -> None:
    """``go build`` with the bench's parallelism, verbose progress and reproducible paths."""
    argv = [go, "build", "-p", str(GO_BUILD_PARALLELISM), "-v", "-trimpath", "-ldflags", ldflags, "-o", output]
    if tags:
        argv += ["-tags", ",".join(tags)]
    runner.run("compile", [*argv, *packages], cwd)


def build_info(
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
        go=go_version(go),
    )
    return info


def build_go_group(group: GoGroup, names: Sequence[str], root: Path, log: Callable[[str], None]) -> None:
    go = go_executable()
    stamp = group_recipe(group)
    workdir = root / "build" / f"{group.key}-{group.label}"
    workdir.mkdir(parents=True, exist_ok=True)
    runner = Runner(",".join(names), log, workdir / "build.log")
    runner.say(f"building {group.module}@{group.version} (cold builds take minutes)")

    # Resolve the release in a directory without go.mod so that the query does not
    # touch the wrapper module.
    probe = workdir / "resolve"
    probe.mkdir(exist_ok=True)
    meta = download_json(runner, go, group.module, group.version, probe)
    dep = parse_go_mod(Path(meta["GoMod"]).read_text(encoding="utf-8"))
    gomod = Template(template_text(group.template, group.template_package)).substitute(
        go_version=dep.go or "1.26.0",
        godebug="\n".join(f"godebug {line}" for line in dep.godebug),
        version=group.version,
        overrides=group.overrides(dep, group.module),
        tools="\n".join(f"\t{pkg}" for pkg in group.packages.values()),
    )
    write_if_changed(workdir / "go.mod", gomod)
    seed_go_sum(workdir / "go.sum", Path(meta["Dir"]) / "go.sum")
    runner.run("download modules (go mod tidy)", [go, "mod", "tidy"], workdir)

    ldflags = " ".join(["-s", "-w", *group.ldflags(release_time(meta["Info"]))])
    out_dir = Path(tempfile.mkdtemp(prefix=".out-", dir=workdir))
    try:
        packages = [group.packages[n] for n in names]
        # One package is written to an explicit file name (go would name etcd's main
        # package "server"); several go into a directory under their package names,
        # which is how the Kubernetes commands are named.
        output = str(out_dir / names[0]) if len(names) == 1 else f"{out_dir}{os.sep}"
        compile_packages(runner, go, ldflags=ldflags, output=output, packages=packages, cwd=workdir, tags=group.tags)
        seconds = round(runner.elapsed(), 1)
        for name in names:
            built = out_dir / (name if len(names) == 1 else Path(group.packages[name]).name)
            if not built.is_file():
                raise BinaryBuildError(f"go build produced no {built.name} in {out_dir}")
            info = build_info(
                go,
                name=name,
                module=f"{group.module}@{group.version}",
                release=group.label,
                recipe=stamp,
                seconds=seconds,
            )
            path = install(built, root, name=name, label=group.label, recipe=stamp, info=info)
            runner.say(f"installed {path}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def go_version(go: str) -> str:
    try:
        return subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
