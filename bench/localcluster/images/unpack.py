"""Unpack a docker archive into a root filesystem, as a container runtime would.

Used to run a built image under runc without containerd (runcrun.py) and to measure
how big it is on disk. Layers are applied in order, gzip or plain; OCI whiteouts
(``.wh.<name>`` deletes a path of a lower layer, ``.wh..wh..opq`` empties a directory)
are honoured. Extraction uses tarfile's ``tar`` filter, so no entry can land outside the
destination, but keeps each entry's own mode: that filter would clear the sticky and
group/other write bits, and a runtime copies the mode of ``/tmp`` onto the tmpfs it
mounts there (a 0755 /tmp is unwritable to the image's user).
"""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class Unpacked:
    """A rootfs directory, the image's config (the OCI ``config`` object) and the sizes."""

    rootfs: Path
    config: dict[str, Any]
    layers: int
    unpacked_bytes: int  # sum of the sizes of all files of all layers


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise ValueError(f"{name} is not a file in the archive")
    with handle:
        return handle.read()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _tar_filter_keeping_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    checked = tarfile.tar_filter(member, dest)
    return checked.replace(mode=member.mode, deep=False)


def _apply_layer(layer: tarfile.TarFile, rootfs: Path) -> int:
    members: list[tarfile.TarInfo] = []
    size = 0
    for member in layer:
        size += member.size
        posix = PurePosixPath(member.name)
        if posix.name == _OPAQUE:
            directory = rootfs / posix.parent
            if directory.is_dir():
                for child in directory.iterdir():
                    _remove(child)
        elif posix.name.startswith(_WHITEOUT):
            _remove(rootfs / posix.parent / posix.name.removeprefix(_WHITEOUT))
        else:
            members.append(member)
    layer.extractall(rootfs, members=members, filter=_tar_filter_keeping_modes)  # noqa: S202 - the filter refuses paths outside
    return size


def unpack_docker_archive(archive: Path, dest: Path) -> Unpacked:
    """Unpack the single image of ``archive`` into the new directory ``dest``."""
    dest.mkdir(parents=True)
    with tarfile.open(archive, mode="r:") as outer:
        (entry,) = json.loads(_read(outer, "manifest.json"))
        config = json.loads(_read(outer, entry["Config"]))
        total = 0
        for name in entry["Layers"]:
            handle = outer.extractfile(name)
            if handle is None:
                raise ValueError(f"{archive}: {name} is not a file")
            # "r:*" reads plain and gzip layers alike.
            with handle, tarfile.open(fileobj=handle, mode="r:*") as layer:
                total += _apply_layer(layer, dest)
    return Unpacked(rootfs=dest, config=config.get("config", {}), layers=len(entry["Layers"]), unpacked_bytes=total)
