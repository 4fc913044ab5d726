"""``python -m bench.localcluster.images [--base] [--injector [--no-cache]]``: build the images,
print name, size, time.

One line per image, tab separated: name, archive, size in MB, seconds of its last
build and whether this run reused it. ``--base`` also builds the Debian base image;
``--injector`` also builds otel-injector's own image with BuildKit from the Dockerfile
(images/injector.py), ``--no-cache`` without BuildKit's build cache (a cold build).
Exit 1 with the error on stderr when a build fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench.localcluster.images import Image, ImageBuildError, build_debian_base, build_images


def _line(image: Image) -> str:
    state = "cached" if image.cached else "built"
    return f"{image.name}\t{image.archive}\t{image.size / 1e6:.1f} MB\t{image.build_seconds:.1f}s\t{state}"


def main(argv: Sequence[str] | None = None) -> int:
    """Build every image and print one line for each."""
    parser = argparse.ArgumentParser(prog="python -m bench.localcluster.images", description=__doc__)
    parser.add_argument("--base", action="store_true", help="also build the Debian bookworm base image")
    parser.add_argument("--injector", action="store_true", help="also build otel-injector's image with BuildKit")
    parser.add_argument("--no-cache", action="store_true", help="with --injector: rebuild every step (cold build)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        images = list(build_images().all())
        if args.base:
            images.append(build_debian_base())
        if args.injector:
            from bench.localcluster.images.injector import ensure_injector_image

            images.append(ensure_injector_image(no_cache=args.no_cache))
    except ImageBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for image in images:
        print(_line(image))
    print(f"[images] done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
