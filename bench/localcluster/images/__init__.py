"""Container images of the local cluster, built here without a registry or an engine.

    from bench.localcluster.images import build_images
    images = build_images()       # cached; builds what is missing or out of date
    images.pause.name, images.pause.archive

Each image is a docker-archive tarball (archive.py) that ``ctr -n k8s.io images import``
loads into containerd under :attr:`Image.name`:

- ``pause`` (pause.py): our own sandbox process, ``localhost/otel-injector-pause``;
- ``collector`` (collector.py): ``docker.io/otel/opentelemetry-collector:<version>``,
  otel-injector's default sidecar image, from the bench's own otelcol build;
- ``demo_app`` (demoapp.py): ``localhost/otel-injector-demo-app``, a Python service
  traced by ``opentelemetry-instrument`` and configured only by ``OTEL_*`` variables.

:func:`build_debian_base` (base.py) also makes a Debian bookworm minbase image for
image builds that start ``FROM debian:bookworm-slim``.

Tarballs are cached under ~/.cache/otel-injector/images by a hash of their inputs
(cache.py); a warm call only hashes inputs. Builds need root (mmdebstrap, chroot), Go
and the machine's Debian mirror and PyPI; a failure raises ImageBuildError naming the
image and the step.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.localcluster.images.base import (
    DEBIAN_BASE_IMAGE,
    build_debian_base_archive,
    debian_base_name,
    debian_base_recipe,
)
from bench.localcluster.images.cache import Built, ImageBuildError, cached_build
from bench.localcluster.images.collector import COLLECTOR_IMAGE, build_collector, collector_recipe
from bench.localcluster.images.demoapp import DEMO_APP_IMAGE, build_demo_app, demo_app_recipe
from bench.localcluster.images.pause import PAUSE_IMAGE, build_pause, pause_recipe

__all__ = [
    "COLLECTOR_IMAGE",
    "DEBIAN_BASE_IMAGE",
    "DEMO_APP_IMAGE",
    "PAUSE_IMAGE",
    "Image",
    "ImageBuildError",
    "Images",
    "build_debian_base",
    "build_images",
]


@dataclass(frozen=True)
class Image:
    """An image tarball ready for ``ctr images import``.

    ``name`` is the fully qualified reference it registers; ``archive`` the docker-archive
    tarball; ``image_id`` the sha256 of its config; ``build_seconds`` how long its last
    build took and ``cached`` whether this call reused it.
    """

    name: str
    archive: Path
    image_id: str = ""
    size: int = 0
    build_seconds: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class Images:
    """The three images a node needs."""

    pause: Image
    collector: Image
    demo_app: Image

    def all(self) -> tuple[Image, ...]:
        """pause, collector, demo_app."""
        return (self.pause, self.collector, self.demo_app)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _image(built: Built) -> Image:
    return Image(
        name=built.name,
        archive=built.archive,
        image_id=built.image_id,
        size=built.size,
        build_seconds=built.build_seconds,
        cached=built.cached,
    )


def build_pause_image(log: Callable[[str], None] = _stderr) -> Image:
    """The pause image (builds or reuses it)."""
    return _image(cached_build(slug="pause", name=PAUSE_IMAGE, recipe=pause_recipe(), build=build_pause, log=log))


def build_collector_image(log: Callable[[str], None] = _stderr) -> Image:
    """The collector image; builds the bench's otelcol first if it is not cached."""
    return _image(
        cached_build(
            slug="collector",
            name=COLLECTOR_IMAGE,
            recipe=collector_recipe(log),
            build=lambda workdir, archive: build_collector(workdir, archive, log),
            log=log,
        )
    )


def build_demo_app_image(log: Callable[[str], None] = _stderr) -> Image:
    """The demo app image (builds or reuses it)."""
    return _image(
        cached_build(
            slug="demo-app",
            name=DEMO_APP_IMAGE,
            recipe=demo_app_recipe(log),
            build=lambda workdir, archive: build_demo_app(workdir, archive, log),
            log=log,
        )
    )


def build_images(log: Callable[[str], None] = _stderr) -> Images:
    """Build, or take from the cache, the pause, collector and demo app images.

    Bounded: every subprocess has a timeout and waiting for another process's build
    gives up after cache.LOCK_TIMEOUT_SECONDS. Raises ImageBuildError with a one-line
    cause (plus the failing tool's last output) when an image cannot be built.
    """
    return Images(
        pause=build_pause_image(log),
        collector=build_collector_image(log),
        demo_app=build_demo_app_image(log),
    )


def build_debian_base(log: Callable[[str], None] = _stderr, packages: Sequence[str] = ()) -> Image:
    """The Debian bookworm minbase image (base.py), built or taken from the cache.

    ``packages`` (Debian package names) are installed too, and named in the image's tag.
    """
    name = debian_base_name(packages)
    return _image(
        cached_build(
            slug="-".join(["debian-base", *packages]),
            name=name,
            recipe=debian_base_recipe(log, packages),
            build=lambda workdir, archive: build_debian_base_archive(workdir, archive, log, packages),
            log=log,
        )
    )
