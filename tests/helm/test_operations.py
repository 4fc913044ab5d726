"""The chart on one real node under a steady pod load: install, rolling restart, a replica
killed with SIGKILL, a certificate renewal, a helm upgrade of the collector config, an
apiserver restart, and helm uninstall. One cluster for the module; the scenarios run in
file order and each leaves two Ready replicas behind for the next."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from bench.localcluster.chartinstall import CHART, ChartRelease, WebhookImage
from bench.localcluster.node.cluster import NodeCluster
from tests.helm.conftest import start
from tests.helm.support import (
    INJECTOR_SELECTOR,
    Scenario,
    injector_pods,
    is_ready,
    kill_container,
    running,
    scenario,
    stale_report,
    traced_namespace,
    wait_settled,
)
from tests.node.support import apply, deployment, get_json, wait_pod_ready
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

#: A chart value, so a forced renewal reaches every replica within seconds rather than
#: the default 30 s; renewal itself is the chart's code path.
VALUES = {"webhook": {"timings": {"certSyncSeconds": 2}}}


@pytest.fixture(scope="module")
def release(image: WebhookImage) -> Iterator[ChartRelease]:
    yield from start(image, nodes=1, values=VALUES)


@pytest.fixture(scope="module")
def cluster(release: ChartRelease) -> NodeCluster:
    return release.cluster


@pytest.fixture(scope="module")
def load_namespace(cluster: NodeCluster) -> str:
    return traced_namespace(cluster, "load")


def test_install_runs_two_replicas_behind_the_service_and_injects(cluster: NodeCluster, release: ChartRelease) -> None:
    pods = wait_settled(release)
    assert {p["spec"]["nodeName"] for p in pods} == {"node-1"}
    config = get_json(cluster, "mutatingwebhookconfiguration", "otel-injector")
    for hook in config["webhooks"]:
        client = hook["clientConfig"]
        assert "url" not in client, client
        assert client["service"] == {
            "name": "otel-injector",
            "namespace": "otel-injector",
            "path": "/mutate",
            "port": 443,
        }
        assert client["caBundle"]
    pdb = get_json(cluster, "pdb", "otel-injector", "-n", "otel-injector")
    assert pdb["spec"]["minAvailable"] == 1
    wait_for(
        "the PDB allows one disruption",
        lambda: (
            get_json(cluster, "pdb", "otel-injector", "-n", "otel-injector")["status"].get("disruptionsAllowed") == 1
        ),
        timeout=30,
    )
    strategy = get_json(cluster, "deployment", "otel-injector", "-n", "otel-injector")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    # A labelled namespace's Deployment: its pod runs on the node with the sidecar.
    namespace = traced_namespace(cluster, "shop")
    apply(cluster, deployment("checkout", namespace, cluster.images.demo_app.name))
    pod = wait_pod_ready(cluster, namespace, "app.kubernetes.io/name=checkout", timeout=120)
    sidecar = [c for c in pod["spec"].get("initContainers", []) if c["name"] == "otel-collector"]
    assert sidecar, pod["spec"]
    statuses = {s["name"]: s for s in pod["status"].get("initContainerStatuses", [])}
    assert statuses["otel-collector"]["started"] is True
    # Negative control: an unlabelled namespace gets no sidecar.
    cluster.kubectl("create", "namespace", "plain")
    wait_for("default SA", lambda: cluster.kubectl("get", "sa", "default", "-n", "plain", check=False).returncode == 0)
    apply(cluster, deployment("plain", "plain", cluster.images.demo_app.name))
    plain = wait_pod_ready(cluster, "plain", "app.kubernetes.io/name=plain", timeout=120)
    assert not plain["spec"].get("initContainers")


def test_rollout_restart_misses_no_pod(cluster: NodeCluster, release: ChartRelease, load_namespace: str) -> None:
    wait_settled(release)
    before = {p["metadata"]["name"] for p in injector_pods(release)}
    with scenario(cluster, load_namespace, "rollout-restart") as run:
        cluster.kubectl("rollout", "restart", "deployment/otel-injector", "-n", "otel-injector")
        cluster.kubectl("rollout", "status", "deployment/otel-injector", "-n", "otel-injector", "--timeout=180s")
        after = wait_settled(release, timeout=120)
    assert not before & {p["metadata"]["name"] for p in after}, "the rollout replaced no pod"
    assert len(run.creations) > 100, run.summary()
    assert run.failed() == [], run.summary()
    assert run.without_sidecar() == [], run.summary()


def test_kill_9_of_one_replica(cluster: NodeCluster, release: ChartRelease, load_namespace: str) -> None:
    pods = wait_settled(release)
    victim = pods[0]
    restarts = victim["status"]["containerStatuses"][0]["restartCount"]

    def notes(run: Scenario) -> str:
        reasons = sorted({line.rsplit(": ", 1)[-1][:60] for line in run.fail_open_lines})
        return (
            f"{len(run.without_sidecar())} without sidecar: calls in flight on, or routed to, the killed replica "
            f"before its endpoint went fail open (Ignore){': ' + '; '.join(reasons) if reasons else ''}"
        )

    with scenario(cluster, load_namespace, "kill-9", notes=notes) as run:
        time.sleep(2)
        kill_container(cluster, victim)

        def restarted() -> bool:
            pod = get_json(cluster, "pod", victim["metadata"]["name"], "-n", "otel-injector")
            return bool(pod["status"]["containerStatuses"][0]["restartCount"] > restarts and is_ready(pod))

        wait_for("the killed replica restarted and Ready", restarted, timeout=120, interval=0.5)
    assert run.failed() == [], run.summary()
    # failurePolicy Ignore: a pod whose call hit the dead replica is created without the
    # sidecar; the apiserver logs each such call as failing open.
    # Each pod without the sidecar is one call the apiserver itself counted as failing open.
    assert run.row is not None
    assert run.row.fail_open == len(run.without_sidecar()), run.summary()
    print(f"kill -9: {len(run.without_sidecar())} pods without the sidecar; apiserver said:")
    for line in run.fail_open_lines[:5]:
        print("  ", line)


def _served_serial(release: ChartRelease) -> str:
    secret = get_json(release.cluster, "secret", "otel-injector-tls", "-n", "otel-injector")
    from base64 import b64decode

    from cryptography import x509

    cert = x509.load_pem_x509_certificate(b64decode(secret["data"]["tls.crt"]))
    return f"{cert.serial_number:x}"


def test_certificate_renewal_fails_no_admission(
    cluster: NodeCluster, release: ChartRelease, load_namespace: str
) -> None:
    pods = wait_settled(release)
    serial = _served_serial(release)
    ca_before = get_json(cluster, "mutatingwebhookconfiguration", "otel-injector")["webhooks"][0]["clientConfig"][
        "caBundle"
    ]
    with scenario(cluster, load_namespace, "cert-renewal (CA too)") as run:
        # "ca" renews the CA as well: the hard case, the caBundle changes under load.
        cluster.kubectl("annotate", "secret", "otel-injector-tls", "-n", "otel-injector", "otel-injector.io/renew=ca")
        wait_for("a new serving certificate in the Secret", lambda: _served_serial(release) != serial, timeout=60)

        def reloaded() -> bool:
            for pod in pods:
                out = cluster.kubectl("logs", "-n", "otel-injector", pod["metadata"]["name"], check=False).stdout
                if "serving certificate reloaded" not in out:
                    return False
            return True

        wait_for("every replica reloaded its certificate", reloaded, timeout=60, interval=1)
        time.sleep(3)
    ca_after = get_json(cluster, "mutatingwebhookconfiguration", "otel-injector")["webhooks"][0]["clientConfig"][
        "caBundle"
    ]
    assert ca_after != ca_before, "the caBundle did not change with the CA"
    assert run.failed() == [], run.summary()
    assert run.without_sidecar() == [], run.summary()
    assert run.row is not None
    assert run.row.fail_open == 0, run.summary()


def _changed_collector_config() -> str:
    text = (CHART / "files" / "collector-config.yaml").read_text(encoding="utf-8")
    assert "  batch: {}\n" in text
    return text.replace("  batch: {}\n", "  batch:\n    timeout: 2s\n")


def test_helm_upgrade_of_the_collector_config(cluster: NodeCluster, release: ChartRelease, load_namespace: str) -> None:
    wait_settled(release)
    namespaces = [traced_namespace(cluster, "up") for _ in range(2)]
    # An injected workload from before the upgrade, which stale must then list.
    apply(cluster, deployment("before", namespaces[0], cluster.images.demo_app.name))
    wait_pod_ready(cluster, namespaces[0], "app.kubernetes.io/name=before", timeout=120)
    code, report = stale_report(cluster, namespaces[0])
    assert (code, report.get("stalePods")) == (0, 0), report

    def hashes() -> set[str]:
        found = set()
        for ns in namespaces:
            cm = get_json(cluster, "configmap", "otel-collector-sidecar", "-n", ns)
            found.add(cm["metadata"]["annotations"]["otel-injector.io/config-hash"])
        return found

    old = hashes()
    assert len(old) == 1
    endpoint = cluster.jaeger_otlp_grpc_endpoint
    config = _changed_collector_config().replace("${env:OTEL_INJECTOR_EXPORTER_ENDPOINT}", endpoint)
    with scenario(cluster, load_namespace, "helm-upgrade (collector config)") as run:
        release.upgrade({"collector": {"config": config}})
        wait_for("every copy updated", lambda: len(hashes()) == 1 and hashes() != old, timeout=60)
        time.sleep(2)
    new = hashes().pop()
    assert run.failed() == [], run.summary()
    assert run.without_sidecar() == [], run.summary()
    late = [c for c in run.creations if c.created][-10:]
    assert {c.config_hash for c in late} == {new}, [c.config_hash for c in late]
    code, report = stale_report(cluster, namespaces[0])
    assert code == 3, report
    names = {(w["kind"], w["name"]) for w in report["workloads"]}
    assert ("Deployment", "before") in names, report
    # Negative control: the other namespace has no injected pod from before.
    assert stale_report(cluster, namespaces[1])[1]["stalePods"] == 0


def test_apiserver_restart(cluster: NodeCluster, release: ChartRelease, load_namespace: str) -> None:
    wait_settled(release)
    apiserver = cluster.processes["kube-apiserver"]
    window: list[float] = []

    def during(creations: list[object]) -> list[object]:
        if len(window) < 2:
            return []
        return [c for c in creations if window[0] <= c.sent <= window[1] + 1.0]  # type: ignore[attr-defined]

    with scenario(cluster, load_namespace, "apiserver restart", down=during) as run:  # type: ignore[arg-type]
        time.sleep(3)
        window.append(time.monotonic())
        apiserver.restart()
        window.append(time.monotonic())
        wait_settled(release, timeout=120)
        # Keeps serving: creations after the restart get the sidecar, and the reconciler
        # still copies the config into a namespace labelled now.
        late_namespace = traced_namespace(cluster, "late")
        time.sleep(5)
    assert late_namespace
    after = [c for c in run.creations if c.sent > window[1] + 5.0]
    assert len(after) > 30, run.summary()
    assert all(c.created and c.sidecar for c in after), run.summary()
    assert run.failed() == [] or all(window[0] <= c.sent <= window[1] + 1.0 for c in run.failed()), run.summary()


def test_helm_uninstall_removes_the_webhook_first_and_leaves_nothing(
    cluster: NodeCluster, release: ChartRelease, load_namespace: str
) -> None:
    wait_settled(release)
    # The reconciler's copies exist before (the namespaces of the earlier scenarios).
    assert get_json(cluster, "configmaps", "-A", "-l", "app.kubernetes.io/managed-by=otel-injector")["items"]
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        # When the webhook configuration disappears, and when the Deployment starts going.
        while not stop.is_set():
            now = time.monotonic()
            if "webhook gone" not in seen:
                gone = cluster.kubectl("get", "mutatingwebhookconfiguration", "otel-injector", check=False)
                if gone.returncode != 0 and "NotFound" in gone.stderr:
                    seen["webhook gone"] = now
            if "deployment going" not in seen:
                found = cluster.kubectl(
                    "get", "deployment", "otel-injector", "-n", "otel-injector", "-o", "json", check=False
                )
                if found.returncode != 0 or json.loads(found.stdout)["metadata"].get("deletionTimestamp"):
                    seen["deployment going"] = now
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)

    def notes(run: object) -> str:
        return "pods after the webhook configuration went are created without the sidecar, as asked"

    with (
        running(watcher, stop, join_timeout=10),
        scenario(cluster, load_namespace, "helm uninstall", notes=notes) as run,
    ):
        out = release.uninstall()
    print(out.stdout, out.stderr)
    assert set(seen) == {"webhook gone", "deployment going"}, seen
    assert seen["webhook gone"] < seen["deployment going"], seen
    assert run.failed() == [], run.summary()
    assert run.row is not None
    assert run.row.fail_open == 0, run.summary()
    leftovers = _leftovers(cluster)
    assert leftovers == [], leftovers
    # What the user asked to keep: the namespace helm created (--create-namespace).
    assert cluster.kubectl("get", "namespace", "otel-injector", check=False).returncode == 0


def _leftovers(cluster: NodeCluster) -> list[str]:
    """Objects of the release or made by the injector that are still there."""
    found: list[str] = []
    for kind in ("deployments", "services", "pdb", "serviceaccounts", "roles", "rolebindings", "leases", "secrets"):
        items = get_json(cluster, kind, "-n", "otel-injector")["items"]
        found += [
            f"{kind}/{i['metadata']['name']}"
            for i in items
            if i["metadata"]["name"] != "default" and not i["metadata"]["name"].startswith("kube-root-ca")
        ]
    for kind in ("clusterroles", "clusterrolebindings", "mutatingwebhookconfigurations"):
        items = get_json(cluster, kind, "-l", "app.kubernetes.io/part-of=otel-injector")["items"]
        found += [f"{kind}/{i['metadata']['name']}" for i in items]
    copies = get_json(cluster, "configmaps", "-A", "-l", "app.kubernetes.io/managed-by=otel-injector")["items"]
    found += [f"configmap {i['metadata']['namespace']}/{i['metadata']['name']}" for i in copies]
    pods = get_json(cluster, "pods", "-n", "otel-injector", "-l", INJECTOR_SELECTOR)["items"]
    found += [f"pod/{p['metadata']['name']}" for p in pods]
    return found
