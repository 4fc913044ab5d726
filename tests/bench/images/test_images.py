"""The package's interface (build_images, Image) and its command line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.localcluster.images import Image, Images, build_images

REPO = Path(__file__).parents[3]


def test_build_images_returns_the_three_images() -> None:
    images = build_images()
    assert isinstance(images, Images)
    assert [type(i) for i in images.all()] == [Image, Image, Image]
    for image in images.all():
        assert image.archive.is_file(), image
        assert image.archive.stat().st_size == image.size
        assert image.image_id.startswith("sha256:")


def test_warm_build_reuses_every_tarball() -> None:
    build_images()
    started = time.monotonic()
    again = build_images()
    seconds = time.monotonic() - started
    assert all(image.cached for image in again.all())
    print(f"warm build_images(): {seconds:.2f}s")


def test_command_line_prints_name_size_and_time() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.localcluster.images"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    names = [fields[0] for fields in lines]
    images = build_images()
    assert names == [image.name for image in images.all()]
    assert all(fields[2].endswith(" MB") and fields[3].endswith("s") for fields in lines)
