"""The run record survives a round trip and a broken file reads as none."""

from __future__ import annotations

from pathlib import Path

from bench.localcluster.node import runrecord


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    record = runrecord.RunRecord(workdir="/tmp/x", sysctls={"kernel.panic": "1"}, cgroup_roots=["otel-injector-x"])
    record.save(path)
    assert runrecord.load(path) == record


def test_unreadable_record_is_none_and_reap_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("{not json")
    assert runrecord.load(path) is None
    assert runrecord.reap(path) is None
    assert not path.exists()


def test_reap_undoes_an_empty_run(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    workdir = tmp_path / "gone"
    runrecord.RunRecord(workdir=str(workdir)).save(path)
    assert runrecord.reap(path) == runrecord.RunRecord(workdir=str(workdir))
    assert not path.exists()
