"""Write docker-archive image tarballs with the standard library, byte for byte reproducibly.

A docker archive (the format of ``docker save``) is an uncompressed tar holding
``manifest.json``, the image config JSON and one ``layer.tar`` per layer, each named by
its sha256. ``ctr images import`` reads it as it is. Writing it here, rather than with a
container engine, needs nothing but :mod:`tarfile`, :mod:`hashlib` and :mod:`json`.

Reproducible: every tar entry gets mtime :data:`EPOCH`, numeric owners only (no user
or group names) and the entries are sorted by path, so the same inputs give the same
layer digests, the same config digest (the image ID) and the same archive bytes. JSON is
written with sorted keys and no whitespace for the same reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

#: Modification time of every entry: 2000-01-01T00:00:00Z. Not 0, which some tools
#: show as "no date"; any constant keeps the digests stable.
EPOCH = 946_684_800
#: The ``created`` time written into image configs, the same instant as EPOCH.
CREATED = "2000-01-01T00:00:00Z"


@dataclass(frozen=True)
class File:
    """A regular file of a layer, with its content in memory."""

    path: str
    data: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Dir:
    """A directory of a layer."""

    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink:
    """A symbolic link of a layer."""

    path: str
    target: str


Entry = File | Dir | Symlink


@dataclass(frozen=True)
class Layer:
    """A written layer tar: where it is, its sha256 (the diff ID) and its size."""

    path: Path
    diff_id: str
    size: int


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (the OCI ``config`` object), all optional."""

    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Sequence[str] = ()
    user: str = ""
    working_dir: str = ""
    exposed_ports: Sequence[str] = ()  # e.g. "4317/tcp"
    labels: Mapping[str, str] = field(default_factory=dict)


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: BinaryIO) -> None:
        super().__init__()
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.sink.write(view)
        self.size += len(view)
        return len(view)


def _clean(path: str) -> str:
    """Archive name of ``path``: relative, no leading ``./`` or ``/``, no trailing slash."""
    name = os.path.normpath(path.lstrip("/")).removeprefix("./")
    if name in ("", ".") or name.startswith(".."):
        raise ValueError(f"bad path in a layer: {path!r}")
    return name


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = EPOCH
    info.uname = ""
    info.gname = ""
    info.pax_headers = {}
    return info


def _entry_info(entry: Entry) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(_clean(entry.path))
    data: bytes | None = None
    if isinstance(entry, File):
        info.type, info.mode, info.uid, info.gid = tarfile.REGTYPE, entry.mode, entry.uid, entry.gid
        info.size = len(entry.data)
        data = entry.data
    elif isinstance(entry, Dir):
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid
    else:
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
    return _normalised(info), data


def _tree_paths(root: Path, exclude: Callable[[str], bool]) -> list[str]:
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in [*dirnames, *filenames]:
            arc = name if rel == "." else f"{rel}/{name}"
            if not exclude(arc):
                names.append(arc)
        # Do not descend into excluded directories.
        dirnames[:] = [d for d in dirnames if not exclude(d if rel == "." else f"{rel}/{d}")]
    return names


def _parents(name: str) -> Iterable[str]:
    parts = name.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def write_layer(
    dest: Path,
    entries: Iterable[Entry] = (),
    *,
    tree: Path | None = None,
    exclude: Callable[[str], bool] = lambda _name: False,
) -> Layer:
    """Write one layer tar to ``dest`` and return it with its diff ID.

    The layer holds every file, directory, symlink and hard link under ``tree`` (with
    the owners and modes it has on disk; device nodes, sockets and fifos are refused)
    except the relative paths ``exclude`` accepts, plus ``entries``, which replace tree
    entries of the same path. Missing parent directories of ``entries`` are added as
    root-owned 0755 directories.
    """
    infos: dict[str, tuple[tarfile.TarInfo, bytes | None, Path | None]] = {}
    with dest.open("wb") as sink:
        writer = _HashingWriter(sink)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if tree is not None:
                # gettarinfo() turns the second path of an inode into a hard link to the
                # first it saw, so the paths are visited in sorted order.
                for name in sorted(_tree_paths(tree, exclude)):
                    on_disk = tree / name
                    info = tar.gettarinfo(str(on_disk), arcname=name)
                    if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                        raise ValueError(f"{on_disk}: not a file, directory or link; refusing it in a layer")
                    infos[name] = (_normalised(info), None, on_disk if info.isreg() else None)
            for entry in entries:
                info, data = _entry_info(entry)
                infos[info.name] = (info, data, None)
                for parent in _parents(info.name):
                    if parent not in infos:
                        infos[parent] = (_entry_info(Dir(parent))[0], None, None)
            for name in sorted(infos):
                info, data, source = infos[name]
                if data is not None:
                    tar.addfile(info, io.BytesIO(data))
                elif source is not None:
                    with source.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    return Layer(path=dest, diff_id=f"sha256:{writer.digest.hexdigest()}", size=writer.size)


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def config_json(layers: Sequence[Layer], config: ImageConfig, *, history: str) -> bytes:
    """The image config JSON (linux/amd64) for ``layers``; its sha256 is the image ID."""
    runtime: dict[str, object] = {}
    if config.entrypoint:
        runtime["Entrypoint"] = list(config.entrypoint)
    if config.cmd:
        runtime["Cmd"] = list(config.cmd)
    if config.env:
        runtime["Env"] = list(config.env)
    if config.user:
        runtime["User"] = config.user
    if config.working_dir:
        runtime["WorkingDir"] = config.working_dir
    if config.exposed_ports:
        runtime["ExposedPorts"] = {port: {} for port in config.exposed_ports}
    if config.labels:
        runtime["Labels"] = dict(config.labels)
    return _json_bytes(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": CREATED, "created_by": history} for _ in layers],
        }
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _normalised(tarfile.TarInfo(name))
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_docker_archive(dest: Path, *, name: str, layers: Sequence[Layer], config: ImageConfig, history: str) -> str:
    """Write a docker-archive tarball of one image tagged ``name``; return the image ID.

    ``name`` is a full reference (``docker.io/otel/opentelemetry-collector:0.162.0``);
    it goes into manifest.json's RepoTags, which is what ``ctr images import`` registers.
    """
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image name {name!r} has no tag")
    config_bytes = config_json(layers, config, history=history)
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    manifest = [
        {
            "Config": f"{config_hex}.json",
            "RepoTags": [name],
            "Layers": [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in layers],
        }
    ]
    with dest.open("wb") as sink, tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for layer in layers:
            hexdigest = layer.diff_id.removeprefix("sha256:")
            directory = _normalised(tarfile.TarInfo(hexdigest))
            directory.type, directory.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(directory)
            info = _normalised(tarfile.TarInfo(f"{hexdigest}/layer.tar"))
            info.size, info.mode = layer.size, 0o644
            with layer.path.open("rb") as handle:
                tar.addfile(info, handle)
        _add_bytes(tar, f"{config_hex}.json", config_bytes)
        _add_bytes(tar, "manifest.json", _json_bytes(manifest))
        _add_bytes(tar, "repositories", _json_bytes({repo: {tag: layers[-1].diff_id.removeprefix("sha256:")}}))
    return f"sha256:{config_hex}"


def file_mode(path: Path) -> int:
    """Permission bits of ``path`` (for copying a host file into a layer)."""
    return stat.S_IMODE(path.stat().st_mode)
