"""The peers section of ``python -m bench``: build, start, measure, report.

One local control plane (:class:`bench.localcluster.controlplane.ControlPlane`); on it,
all at once, each selecting only its own namespaces: otel-injector (as a cluster gets it),
istiod's injector, Kyverno with the published ClusterPolicy, and the zero-work limit. A
peer that cannot be built or started is recorded as unavailable, with the reason, and the
others still run. Results: ``results["peers"]`` (records, see :mod:`bench.peers.report`)
and ``results["peers_detail"]`` (the raw run), plus PEERS.md, peers.png and the policy.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.peers import builds, measure, report
from bench.peers.kyverno import POLICY
from bench.peers.webhooks import BASELINE_NAMESPACE, WEBHOOKS, Peer, create_namespace
from bench.perf import pods
from bench.perf.system import log as bench_log


def _bodies() -> dict[str, bytes]:
    """The typical and large pods as POSTed to the apiserver."""
    return {shape: json.dumps(measure.creatable(pods.shape(shape))).encode() for shape in ("typical", "large")}


def _start(
    name: str, start: Callable[[], Peer], peers: list[Peer], unavailable: dict[str, str], log: Callable[[str], None]
) -> None:
    try:
        peers.append(start())
        log(f"  {name}: running, hooks {peers[-1].hook_names}")
    except Exception as err:
        traceback.print_exc()
        unavailable[name] = f"could not be started: {type(err).__name__}: {str(err)[-1500:]}"


def run_peers(
    count: int, wrk_seconds: float, budget_s: float, log: Callable[[str], None] = bench_log
) -> dict[str, Any]:
    """The raw run: builds, meta, unavailable peers, creations, HTTP-level figures."""
    from bench.localcluster.controlplane import ControlPlane
    from bench.perf.system import machine
    from webhook import __version__

    started = time.monotonic()
    m = machine()
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, load average at start "
        + ", ".join(f"{x:.2f}" for x in m["load_average_at_start"]),
        "count": count,
        "lane_budget_s": budget_s,
        "versions": {"otel-injector": __version__, "limit": "no-op app, otel-injector's stack"},
        "builds": {},
    }
    unavailable: dict[str, str] = {}
    built: dict[str, builds.Built] = {}
    for name in ("istio", "kyverno"):
        result = builds.build(name, log=lambda m: log(f"  {m}"))
        built[name] = result
        meta["builds"][name] = {
            "version": result.version,
            "seconds": result.seconds,
            "build_seconds": result.build_seconds,
            "path": str(result.path),
        }
        meta["versions"][name] = result.version
        if result.path is None:
            unavailable[name] = f"could not be built: {result.error}"
    run: dict[str, Any] = {"meta": meta, "unavailable": unavailable, "errors": {}, "http": {}}
    bodies = _bodies()
    with ControlPlane(log=lambda m: log(f"  {m}")) as cp:
        meta["kube_version"] = _kube_version(cp)
        peers: list[Peer] = []
        _start("otel-injector", lambda: _ours(cp, log), peers, unavailable, log)
        ours = peers[0] if peers else None
        if ours is None:
            raise RuntimeError(f"otel-injector did not start: {unavailable.get('otel-injector')}")
        tls_dir, ca_bundle = cp.workdir / "webhook-tls", (cp.workdir / "webhook-tls" / "ca.crt").read_bytes()
        import base64

        bundle = base64.b64encode(ca_bundle).decode()
        shapes = {s: json.loads(bodies[s]) for s in bodies}
        from bench.peers.webhooks import start_limit

        _start("limit", lambda: start_limit(cp, tls_dir, bundle, shapes), peers, unavailable, log)
        if built["istio"].path is not None:
            from bench.peers.istio import start_istiod

            path = built["istio"].path
            _start("istio", lambda: start_istiod(cp, path, tls_dir, bundle, log), peers, unavailable, log)
        if built["kyverno"].path is not None:
            from bench.peers.kyverno import start_kyverno

            kpath = built["kyverno"].path
            _start("kyverno", lambda: start_kyverno(cp, kpath, log), peers, unavailable, log)
        peers.sort(key=lambda p: WEBHOOKS.index(p.name))
        create_namespace(cp, BASELINE_NAMESPACE, {})
        injected = _injected_bodies(cp, peers, bodies["typical"], unavailable)
        peers_ok = [p for p in peers if p.name in injected]
        try:
            try:
                run["creations"] = measure.creations(
                    cp, peers=peers_ok, bodies=bodies, injected=injected, count=count, budget_s=budget_s, log=log
                )
            except Exception as err:
                traceback.print_exc()
                run["errors"]["creations"] = f"{type(err).__name__}: {str(err)[-1500:]}"
            for peer in peers_ok:
                run["http"][peer.name] = {}
                for shape in ("typical", "large", "injected"):
                    pod = shapes[shape] if shape != "injected" else json.loads(injected[peer.name])
                    log(f"  wrk: {peer.name} {shape}")
                    try:
                        run["http"][peer.name][shape] = measure.http_level(peer, shape, pod, wrk_seconds)
                    except Exception as err:
                        run["http"][peer.name][shape] = {"error": f"{type(err).__name__}: {str(err)[-800:]}"}
        finally:
            for peer in peers:
                peer.stop()
    meta["seconds"] = round(time.monotonic() - started, 1)
    return run


def _ours(cp: Any, log: Callable[[str], None]) -> Peer:
    from bench.peers.webhooks import start_otel_injector

    return start_otel_injector(cp, lambda m: log(f"  {m}"))


def _injected_bodies(cp: Any, peers: list[Peer], typical: bytes, unavailable: dict[str, str]) -> dict[str, bytes]:
    """Each peer's injected typical pod; a peer that does not inject it is unavailable."""
    creator = measure.Creator(cp)
    out = {}
    try:
        for peer in peers:
            try:
                out[peer.name] = measure.injected_body(creator, peer, typical)
            except Exception as err:
                unavailable[peer.name] = f"did not inject the typical pod: {str(err)[-800:]}"
                creator.close()
                creator = measure.Creator(cp)
    finally:
        creator.close()
    return out


def _kube_version(cp: Any) -> str:
    try:
        data = json.loads(cp.kubectl("version", "-o", "json", check=False).stdout)
    except ValueError:
        return "unknown"
    return str((data.get("serverVersion") or {}).get("gitVersion") or "unknown")


def run_section(results: dict[str, Any], out: Path, *, quick: bool) -> None:
    """Run the section and put its records and raw run into ``results``; write the report.

    A failure of the whole section still yields records (every figure None, the reason
    in each record's ``error``) and a report that says why."""
    bench_log("== peers")
    try:
        run = run_peers(20 if quick else 200, 2.0 if quick else 5.0, 30.0 if quick else 240.0)
    except Exception as err:
        traceback.print_exc()
        reason = f"{type(err).__name__}: {str(err)[-1500:]}"
        run = {"meta": {}, "unavailable": dict.fromkeys(WEBHOOKS, reason), "errors": {"section": reason}}
    recs = report.records(run)
    results["peers"] = recs
    results["peers_detail"] = run
    results["peers_targets"] = report.targets(recs)
    report.write(run, recs, out, POLICY)
    bench_log(f"== peers done: {out / 'PEERS.md'}")
    for target in results["peers_targets"]:
        mark = {True: "met   ", False: "MISSED", None: "n/a   "}[target["met"]]
        bench_log(f"  {mark} {target['target']}: {target['measured']}")
