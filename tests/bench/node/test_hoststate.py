"""Snapshots of the machine's state and their differences."""

from __future__ import annotations

from dataclasses import replace

from bench.localcluster.node import hoststate


def test_two_snapshots_in_a_row_do_not_differ() -> None:
    assert hoststate.differences(hoststate.capture(), hoststate.capture()) == []


def test_every_kind_of_difference_is_reported() -> None:
    before = hoststate.capture()
    after = replace(
        before,
        sysctls={**before.sysctls, "kernel.panic": str(int(before.sysctls["kernel.panic"]) + 1)},
        mounts=before.mounts | {"/x/ns/net"},
        paths=before.paths | {"/var/lib/kubelet"},
        cgroups=before.cgroups | {"/sys/fs/cgroup/memory/kubepods"},
        links=before.links + "\notel0",
        iptables=before.iptables + "\n-A KUBE-X",
        processes=frozenset({123}),
    )
    found = "\n".join(hoststate.differences(before, after))
    for needle in ("sysctl kernel.panic", "/x/ns/net", "/var/lib/kubelet", "kubepods", "links", "iptables", "pid 123"):
        assert needle in found


def test_iptables_comment_lines_do_not_count() -> None:
    before = hoststate.capture()
    after = replace(before, iptables="# Generated at noon\n" + before.iptables)
    assert hoststate.differences(before, after) == []


def test_sysctls_are_read_by_dotted_name() -> None:
    values = hoststate.read_sysctls(["kernel.ostype", "no.such.key"])
    assert values == {"kernel.ostype": "Linux"}
