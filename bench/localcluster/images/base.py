"""A Debian bookworm base image, the bench's equivalent of ``debian:bookworm-slim``.

mmdebstrap's ``minbase`` variant installs Debian's essential packages and apt, which is
what the official slim image holds; like it, manual pages, info pages and translations
are left out (debian.py) and apt's package lists are empty, so a build starts with
``apt-get update``. It is published under a local name, never as ``debian:...``: an image
build that wants it as its base names it (e.g. ``FROM`` with a build argument, or a
BuildKit named context mapping ``debian:bookworm-slim`` to this image).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.localcluster.images import archive, debian
from bench.localcluster.images.archive import ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.cache import recipe_hash

DEBIAN_BASE_IMAGE = f"localhost/otel-injector-debian:{debian.SUITE}-slim"


def debian_base_recipe(log: Callable[[str], None]) -> str:
    """Cache key: the suite, mmdebstrap's version and the code that assembles it."""
    return recipe_hash(
        "debian-base",
        DEBIAN_BASE_IMAGE,
        debian.mmdebstrap_version(log),
        Path(__file__).read_bytes(),
        Path(debian.__file__).read_bytes(),
        Path(archive.__file__).read_bytes(),
    )


def build_debian_base_archive(workdir: Path, archive_path: Path, log: Callable[[str], None]) -> str:
    """mmdebstrap minbase into ``workdir`` and write the image to ``archive_path``."""
    rootfs = debian.make_rootfs(workdir / "rootfs", variant="minbase", packages=[], log=log)
    layer = write_layer(workdir / "layer.tar", tree=rootfs.path)
    config = ImageConfig(
        cmd=["bash"],
        env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        labels={
            "org.opencontainers.image.title": f"Debian {debian.SUITE} minbase (otel-injector bench)",
            "org.opencontainers.image.description": "Debian's own packages, installed by mmdebstrap "
            "--variant=minbase; the bench's stand-in for debian:bookworm-slim",
            "org.opencontainers.image.version": debian.SUITE,
            "io.otel-injector.bench.debian-packages": " ".join(rootfs.packages),
        },
    )
    return write_docker_archive(
        archive_path,
        name=DEBIAN_BASE_IMAGE,
        layers=[layer],
        config=config,
        history=f"mmdebstrap --variant=minbase {debian.SUITE}",
    )
