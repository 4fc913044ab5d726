"""The pause image: a static binary of our own that exits on SIGTERM and reaps orphans."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.localcluster.images import Image
from bench.localcluster.images.cache import cached_build
from bench.localcluster.images.pause import PAUSE_IMAGE, PAUSE_USER, build_pause, pause_recipe
from tests.bench.images.support import layer_file, layer_members, read_archive


@pytest.fixture(scope="module")
def pause() -> Image:
    built = cached_build(slug="pause", name=PAUSE_IMAGE, recipe=pause_recipe(), build=build_pause, log=print)
    return Image(name=built.name, archive=built.archive, image_id=built.image_id, size=built.size)


@pytest.fixture(scope="module")
def binary(pause: Image, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pause") / "pause"
    path.write_bytes(layer_file(read_archive(pause.archive).layers[0], "pause"))
    path.chmod(0o755)
    return path


def test_image_is_one_static_binary_under_a_local_name(pause: Image) -> None:
    assert pause.name == PAUSE_IMAGE
    assert pause.name.startswith("localhost/")
    assert "registry.k8s.io" not in pause.name
    view = read_archive(pause.archive)
    assert view.config["config"]["Entrypoint"] == ["/pause"]
    assert view.config["config"]["User"] == PAUSE_USER
    members = layer_members(view.layers[0])
    assert list(members) == ["pause"]
    assert members["pause"].mode == 0o755
    head = layer_file(view.layers[0], "pause")[:64]
    assert head.startswith(b"\x7fELF")
    assert b".interp" not in layer_file(view.layers[0], "pause"), "dynamically linked"
    print(f"pause image: {pause.size / 1e6:.2f} MB")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_exits_zero_on_a_stop_signal(binary: Path, signum: int) -> None:
    proc = subprocess.Popen([str(binary)], stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert proc.poll() is None, "pause must wait for a signal"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_reaps_orphans_as_pid_1(binary: Path) -> None:
    """A process left behind in the PID namespace is reaped, not left a zombie."""
    assert os.geteuid() == 0, "needs root for a PID namespace"
    sandbox = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", str(binary)])
    pause_pid = ""
    try:
        time.sleep(0.5)
        children = Path(f"/proc/{sandbox.pid}/task/{sandbox.pid}/children").read_text().split()
        assert len(children) == 1, children
        pause_pid = children[0]
        # sh forks `sleep` in the background and exits at once: sleep becomes an orphan
        # of the namespace and is handed to PID 1, which is pause.
        subprocess.run(
            ["nsenter", "-t", pause_pid, "-p", "--", "sh", "-c", "sleep 0.3 & echo $! > /dev/null"],
            check=True,
            timeout=10,
        )
        time.sleep(1.5)
        states = []
        for child in Path(f"/proc/{pause_pid}/task/{pause_pid}/children").read_text().split():
            with open(f"/proc/{child}/stat") as stat:
                states.append(stat.read().split(")")[1].split()[0])
        assert "Z" not in states, states
    finally:
        # unshare does not forward signals: stop pause itself, then unshare returns.
        if pause_pid:
            os.kill(int(pause_pid), signal.SIGTERM)
        else:
            sandbox.kill()
        sandbox.wait(timeout=10)
    assert sandbox.returncode == 0


def test_digest_is_stable_across_two_builds(tmp_path: Path) -> None:
    ids, digests = [], []
    for run in ("one", "two"):
        workdir = tmp_path / run
        workdir.mkdir()
        ids.append(build_pause(workdir, workdir / "image.tar"))
        digests.append(hashlib.sha256((workdir / "image.tar").read_bytes()).hexdigest())
    assert ids[0] == ids[1]
    assert digests[0] == digests[1]


def test_without_go_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from bench.localcluster.images import pause as module
    from bench.localcluster.images.cache import ImageBuildError

    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(ImageBuildError, match="`go` command is not on PATH"):
        module.pause_recipe()
