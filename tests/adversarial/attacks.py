"""The crafted inputs of the adversarial catalogue, by defect class (issue 9).

Each builder returns request bytes (a whole HTTP/1.1 request, or a sender that writes it in
an unusual way) for ``otel-injector serve``. Sizes default to what the 6 MiB body cap
allows; ``scale`` shrinks them where the unfixed server would need gigabytes.
"""

from __future__ import annotations

import base64
import re
import select
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tests.adversarial.probe import Sender, http_post, send_all

MiB = 1024 * 1024


def review(pod: dict[str, Any], **request: Any) -> dict[str, Any]:
    """An AdmissionReview for ``pod`` as the apiserver sends it; ``request`` overrides fields."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "name": "",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            **request,
        },
    }


def pod(containers: list[dict[str, Any]] | None = None, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", "namespace": "shop", **metadata},
        "spec": {"containers": containers if containers is not None else [{"name": "web", "image": "nginx"}]},
    }


def tiny_containers(count: int) -> list[dict[str, Any]]:
    return [{"name": f"c{i}", "image": "i"} for i in range(count)]


def deep(depth: int) -> str:
    """A placeholder that :func:`body` replaces by a list nested ``depth`` deep (orjson
    cannot write one: its encoder stops at 255 levels)."""
    return f"__DEEP_{depth}__"


_DEEP = re.compile(rb'"__DEEP_([0-9]+)__"')


def body(obj: Any) -> bytes:
    return _DEEP.sub(lambda m: b"[" * int(m[1]) + b'"x"' + b"]" * int(m[1]), orjson.dumps(obj))


def post(obj: Any) -> Sender:
    return send_all(http_post(body(obj)))


@dataclass(frozen=True)
class Attack:
    """One crafted request. ``klass`` is the issue's defect class (1-9)."""

    klass: int
    name: str
    what: str
    send: Sender
    input_bytes: int


def owner_pod(name: str, containers: int, kind: str = "ReplicaSet", template_hash: str = "7d4b9c") -> dict[str, Any]:
    owner = f"{name}-{template_hash}" if kind == "ReplicaSet" else name
    return pod(
        tiny_containers(containers),
        labels={"pod-template-hash": template_hash},
        ownerReferences=[{"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "u", "controller": True}],
    )


def _attack(klass: int, name: str, what: str, obj: Any) -> Attack:
    data = http_post(body(_review_obj(obj)))
    return Attack(klass, name, what, send_all(data), len(data))


def class1(scale: float = 1.0) -> list[Attack]:
    """Work that grows faster than the input."""
    n = int(50_000 * scale)
    names = [f"c{i}" for i in range(n)]
    wanted = ",".join([*names, *(f"missing{i}" for i in range(n // 4))])
    many_env = [{"name": f"V{i}", "value": "v"} for i in range(int(150_000 * scale))]
    attrs = ",".join(f"k{i}=v" for i in range(int(400_000 * scale)))
    return [
        _attack(1, "containers-annotation", f"{n} containers, annotation naming them all (+{n // 4} unknown)",
                pod(tiny_containers(n), annotations={"otel-injector.io/containers": wanted})),
        _attack(1, "many-env", f"one container with {len(many_env)} env vars",
                pod([{"name": "web", "image": "i", "env": many_env}])),
        _attack(1, "resource-attributes-pairs", "OTEL_RESOURCE_ATTRIBUTES with 400k pairs",
                pod([{"name": "web", "image": "i", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": attrs}]}])),
        _attack(1, "many-ports", f"{n} containers with 3 ports each",
                pod([{"name": f"c{i}", "ports": [{"containerPort": p} for p in (80, 81, 82)]} for i in range(n // 2)])),
        _attack(1, "many-owners", "150k ownerReferences, none the controller",
                pod(ownerReferences=[{"kind": "ReplicaSet", "name": f"r{i}"} for i in range(int(150_000 * scale))])),
        _attack(1, "cronjob-regex", "a Job owner whose name is 1M of '-1234567' (the CronJob pattern)",
                owner_pod("-1234567" * int(125_000 * scale), 1, kind="Job")),
    ]  # fmt: skip


def class2(scale: float = 1.0) -> list[Attack]:
    """Output that grows far beyond the input."""
    long = int(100_000 * scale)
    many = int(250 * scale) or 1
    return [
        _attack(2, "owner-name", f"a {long // 1000} kB '%' workload name, {many} containers",
                owner_pod("%" * long, many)),
        _attack(2, "owner-name-unicode", f"a {long // 1000} k-char CJK workload name, {many} containers",
                owner_pod("\u6f22" * (long // 3), many)),
        _attack(2, "job-cronjob-name", f"a {long // 1000} kB Job name of a CronJob, {many} containers",
                owner_pod("n" * long + "-29000000", many, kind="Job")),
        _attack(2, "app-label", f"a {long // 1000} kB app label, {many} containers",
                pod(tiny_containers(many), labels={"app": "a" * long})),
        _attack(2, "namespace", f"a {long // 1000} kB namespace, {many} containers",
                review(pod(tiny_containers(many)), namespace="n" * long)),
        _attack(2, "container-names", f"{many} containers with {long // 1000} kB names",
                pod([{"name": f"{i}" + "c" * (long // 5), "image": "i"} for i in range(many)])),
        _attack(2, "tiny-containers", f"{int(100_000 * scale)} tiny containers",
                pod(tiny_containers(int(100_000 * scale)))),
        _attack(2, "big-resource-attributes", "one 5 MB OTEL_RESOURCE_ATTRIBUTES to merge into",
                pod([{"name": "web", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "a=" + "b" * 5 * MiB}]}])),
    ]  # fmt: skip


def _review_obj(obj: Any) -> Any:
    return obj if isinstance(obj, dict) and "request" in obj else review(obj)


def streamed_header(total: int) -> Sender:
    def send(sock: ssl.SSLSocket) -> None:
        sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        for _ in range(total >> 20):
            sock.sendall(chunk)
        sock.sendall(b"\r\n\r\n")

    return send


def slow(prefix: bytes, pause: float, then: bytes = b"") -> Sender:
    """Send ``prefix``, wait ``pause`` seconds (the server should give up first), then ``then``."""

    def send(sock: ssl.SSLSocket) -> None:
        sock.sendall(prefix)
        # Wait, but stop as soon as the server answers or closes.
        readable, _, _ = select.select([sock], [], [], pause)
        if then and not readable:
            sock.sendall(then)

    return send


def class3(scale: float = 1.0) -> list[Attack]:
    """HTTP limits."""
    many_headers = b"".join(b"X-H%d: v\r\n" % i for i in range(int(100_000 * scale)))
    small = body(review(pod()))
    header_size = int(100 * MiB * scale)
    return [
        Attack(3, "huge-header", f"one {header_size >> 20} MiB header line", streamed_header(header_size),
               header_size),
        Attack(3, "many-headers", f"{int(100_000 * scale)} small headers",
               send_all(http_post(small, extra=many_headers)), len(many_headers)),
        Attack(3, "huge-url", "a 4 MiB request target",
               send_all(b"GET /healthz?" + b"q" * 4 * MiB + b" HTTP/1.1\r\nHost: x\r\n\r\n"), 4 * MiB),
        Attack(3, "slow-headers", "headers trickle in, then 40 s of silence",
               slow(b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\n", 40), 40),
        Attack(3, "slow-body", "Content-Length 2000, 100 bytes, then 40 s of silence",
               slow(http_post(b"x" * 2000)[:-1900], 40), 100),
        Attack(3, "body-over-cap-chunked", "a chunked body of 8 MiB",
               send_all(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n" + b"100000\r\n" + b" " * 0x100000 + b"\r\n" * 1
                        + (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 7 + b"0\r\n\r\n"), 8 * MiB),
    ]  # fmt: skip


def class4() -> list[Attack]:
    """Deep nesting in the fields the server formats."""
    attacks = []
    for where, obj in (
        ("kind", {**review(pod()), "kind": deep(1000)}),
        ("request.name", review(pod(), name=deep(1000))),
        ("metadata.name", review(pod(name=deep(1000)))),
        ("userInfo.username", review(pod(), userInfo={"username": deep(1000)})),
        ("apiVersion", {**review(pod()), "apiVersion": deep(1000)}),
        ("request.uid", review(pod(), uid=deep(1000))),
        ("kind.group", review(pod(), kind={"group": deep(1000), "version": "v1", "kind": "Pod"})),
        ("container field", review(pod([{"name": "web", "x": deep(1000)}]))),
        ("annotation value", review(pod(annotations={"otel-injector.io/cpu-limit": deep(1000)}))),
        ("container name", review(pod([{"name": deep(1000)}]))),
        ("object deeper than orjson", review(pod([{"name": "web", "x": deep(1100)}]))),
    ):
        attacks.append(_attack(4, f"deep-{where}", f"a list nested 1000 deep as {where}", obj))
    return attacks


def hang_up(declared: int, sent: int) -> Sender:
    def send(sock: ssl.SSLSocket) -> None:
        data = http_post(b" " * declared)
        sock.sendall(data[: len(data) - declared + sent])
        time.sleep(0.2)
        sock.close()

    return send


def class5() -> list[Attack]:
    return [
        Attack(
            5, "hang-up-mid-body", "Content-Length 100000, 1000 bytes sent, then close", hang_up(100_000, 1000), 1000
        ),
    ]


def class6() -> list[Attack]:
    """Unbounded echo of input."""
    big = "u" * 5 * MiB
    return [
        _attack(6, "uid-5MB", "a 5 MB uid", review(pod(), uid=big)),
        _attack(6, "pod-name-5MB", "a 5 MB pod name", review(pod(name=big))),
        _attack(6, "kind-list-6MB", "a 6 MB list as kind", {**review(pod()), "kind": ["k" * 10] * 400_000}),
        _attack(6, "apiVersion-5MB", "a 5 MB apiVersion", {**review(pod()), "apiVersion": big}),
        _attack(6, "operation-5MB", "a 5 MB operation", review(pod(), operation=big)),
        _attack(6, "unknown-annotations", "50k unknown otel-injector.io/ annotations",
                review(pod(annotations={f"otel-injector.io/x{i}": "v" for i in range(50_000)}))),
        _attack(6, "unknown-annotations-9k", "9k unknown otel-injector.io/ annotations (under the 256 KiB budget)",
                review(pod(annotations={f"otel-injector.io/{i:x}": "" for i in range(9_000)}))),
        _attack(6, "unknown-annotations-max", "220k unknown otel-injector.io/ annotations (the body cap)",
                review(pod(annotations={f"otel-injector.io/{i:x}": "" for i in range(220_000)}))),
        _attack(6, "unknown-containers", "containers annotation naming 100k missing containers",
                review(pod(annotations={"otel-injector.io/containers":
                                        "web," + ",".join(f"m{i}" for i in range(100_000))}))),
        _attack(6, "bad-override-5MB", "a 5 MB annotation key under our prefix",
                review(pod(annotations={"otel-injector.io/" + "k" * 5 * MiB: "v"}))),
        Attack(6, "content-type-echo", "a 12 kB Content-Type (under the header limit)",
               send_all(http_post(b"{}", content_type="text/" + "x" * 12_000)), 12_000),
    ]  # fmt: skip


def decode_patch_size(head: bytes) -> int:
    """Patch bytes in the first KiB of a review answer, when it is all there (else -1)."""
    try:
        answer = orjson.loads(head.split(b"\r\n\r\n", 1)[1])
        return len(base64.b64decode(answer["response"].get("patch", "")))
    except (orjson.JSONDecodeError, KeyError, IndexError, ValueError):
        return -1


ALL: dict[int, Callable[..., list[Attack]]] = {1: class1, 2: class2, 3: class3, 4: class4, 5: class5, 6: class6}
