"""A Debian bookworm base image, the bench's equivalent of ``debian:bookworm-slim``.

mmdebstrap's ``minbase`` variant installs Debian's essential packages and apt, which is
what the official slim image holds; like it, manual pages, info pages and translations
are left out (debian.py) and apt's package lists are empty, so a build starts with
``apt-get update``. It is published under a local name, never as ``debian:...``: an image
build that wants it as its base names it (e.g. ``FROM`` with a build argument, or a
BuildKit named context mapping ``debian:bookworm-slim`` to this image).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.localcluster.images import archive, debian
from bench.localcluster.images.archive import ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.cache import recipe_hash

DEBIAN_BASE_IMAGE = f"localhost/otel-injector-debian:{debian.SUITE}-slim"
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")


def debian_base_name(packages: Sequence[str] = ()) -> str:
    """The image's name: the slim base, or ``...-slim-<pkg>-<pkg>`` with extra packages.

    With packages it is no longer what ``debian:bookworm-slim`` is, so the name says what
    was added (e.g. ``localhost/otel-injector-debian:bookworm-slim-python3``).
    """
    for package in packages:
        if not _PACKAGE_NAME.match(package):
            raise ValueError(f"not a Debian package name: {package!r}")
    return "-".join([DEBIAN_BASE_IMAGE, *packages])


def debian_base_recipe(log: Callable[[str], None], packages: Sequence[str] = ()) -> str:
    """Cache key: the suite, the packages, mmdebstrap's version and the code that assembles it."""
    return recipe_hash(
        "debian-base",
        debian_base_name(packages),
        debian.mmdebstrap_version(log),
        Path(__file__).read_bytes(),
        Path(debian.__file__).read_bytes(),
        Path(archive.__file__).read_bytes(),
    )


def build_debian_base_archive(
    workdir: Path, archive_path: Path, log: Callable[[str], None], packages: Sequence[str] = ()
) -> str:
    """mmdebstrap minbase (plus ``packages``) into ``workdir``; write the image to ``archive_path``."""
    rootfs = debian.make_rootfs(workdir / "rootfs", variant="minbase", packages=list(packages), log=log)
    layer = write_layer(workdir / "layer.tar", tree=rootfs.path)
    config = ImageConfig(
        cmd=["bash"],
        env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        labels={
            "org.opencontainers.image.title": f"Debian {debian.SUITE} minbase (otel-injector bench)",
            "org.opencontainers.image.description": "Debian's own packages, installed by mmdebstrap "
            f"--variant=minbase{' --include=' + ','.join(packages) if packages else ''}; "
            "the bench's stand-in for debian:bookworm-slim",
            "org.opencontainers.image.version": debian.SUITE,
            "io.otel-injector.bench.debian-packages": " ".join(rootfs.packages),
        },
    )
    return write_docker_archive(
        archive_path,
        name=debian_base_name(packages),
        layers=[layer],
        config=config,
        history=f"mmdebstrap --variant=minbase {' '.join(packages)} {debian.SUITE}",
    )
