"""Golden files: every input in tests/golden/input goes through the ``inject`` CLI, and every
Pod input also through ``POST /mutate`` over HTTPS; both must match tests/golden/output.

Refresh with ``pytest tests/test_golden.py --update-goldens`` and review the diff. An
output without an input (or the reverse) fails, so goldens cannot go stale silently.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import RunningServer
from tests.support import mutate_via_http
from webhook.cli.main import main
from webhook.core.documents import DocumentView
from webhook.core.settings import InjectionSettings

GOLDEN = Path(__file__).parent / "golden"
INPUTS = sorted((GOLDEN / "input").glob("*.yaml"))
HEADER = "# Generated from input/{name} by tests/test_golden.py; refresh with pytest --update-goldens.\n"
# A fixed config hash so the status annotation in the goldens shows where it goes.
SETTINGS = InjectionSettings(config_hash="0123456789abcdef")


def render_inject(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the real CLI entry point; the golden holds its stderr lines and its stdout."""
    monkeypatch.setenv("OTEL_INJECTOR_CONFIG_HASH", SETTINGS.config_hash)
    code = main(["inject", "-f", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    warnings = "".join(f"# warning: {line}\n" for line in err.splitlines())
    return HEADER.format(name=path.name) + warnings + out


def read_golden(path: Path) -> tuple[list[str], list[Any]]:
    """(warning lines, documents) of a golden output file."""
    text = path.read_text(encoding="utf-8")
    warnings = [line.removeprefix("# warning: ") for line in text.splitlines() if line.startswith("# warning: ")]
    return warnings, [doc for doc in yaml.safe_load_all(text) if doc is not None]


@pytest.mark.parametrize("path", INPUTS, ids=[p.stem for p in INPUTS])
def test_inject_matches_golden(
    path: Path, update_goldens: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render_inject(path, capsys, monkeypatch)
    golden = GOLDEN / "output" / path.name
    if update_goldens:
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"no golden for {path.name}; run pytest --update-goldens"
    assert rendered == golden.read_text(encoding="utf-8")


#: Kinds that are the cluster context of the pods in one input (webhook.core.documents).
CONTEXT_KINDS = {"Namespace", "ConfigMap"}


def _single_pod(path: Path) -> bool:
    kinds = [d.get("kind") for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return kinds.count("Pod") == 1 and set(kinds) <= {"Pod", *CONTEXT_KINDS}


POD_INPUTS = [p for p in INPUTS if _single_pod(p)]


@pytest.mark.parametrize("path", POD_INPUTS, ids=[p.stem for p in POD_INPUTS])
def test_mutate_matches_golden(
    path: Path, https_server: RunningServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook's patch, applied to the pod, equals what ``inject`` wrote. The input's
    Namespace and ConfigMap documents are the webhook's cluster context too, as the informer
    caches would hold them (the same :class:`DocumentView` the CLI builds)."""
    golden_settings = dataclasses.replace(https_server.state.injection, config_hash=SETTINGS.config_hash)
    monkeypatch.setattr(https_server.state.live, "_current", golden_settings)
    inputs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    view = DocumentView(inputs, injector_namespace=golden_settings.namespace)
    monkeypatch.setattr(https_server.state, "context_provider", view.context_for)
    (index,) = [i for i, d in enumerate(inputs) if d.get("kind") == "Pod"]
    pod = inputs[index]
    patched, review = mutate_via_http(client, pod)
    warnings, documents = read_golden(GOLDEN / "output" / path.name)
    assert patched == documents[index]
    label = f"Pod/{pod['metadata'].get('name') or pod['metadata'].get('generateName')}: "
    assert review["response"].get("warnings", []) == [w.removeprefix(label) for w in warnings]
    assert review["response"]["allowed"] is True


def test_every_golden_has_an_input_and_the_reverse() -> None:
    inputs = {p.name for p in INPUTS}
    outputs = {p.name for p in (GOLDEN / "output").glob("*.yaml")}
    assert outputs - inputs == set(), f"stale goldens without an input: {sorted(outputs - inputs)}"
    assert inputs - outputs == set(), f"inputs without a golden: {sorted(inputs - outputs)}"


def test_goldens_cover_the_required_cases() -> None:
    """The issue's list of cases, by file, so a deleted case is noticed."""
    required = {
        "bare-pod",
        "deployment",
        "deployment-pod",
        "statefulset",
        "job",
        "cronjob",
        "init-containers",
        "existing-otel-env",
        "env-from",
        "host-network",
        "port-collision",
        "already-injected",
        "opt-out",
        "overrides",
        "overrides-bad",
        "container-mode",
        "namespace-defaults",
        "namespace-defaults-deployment",
        "collector-config-named",
        "collector-config-namespace",
        "collector-config-unknown",
        "env-from-wins",
        "env-from-attributes",
    }
    assert required <= {p.stem for p in INPUTS}
