"""AdmissionReview parsing (BadReview for every malformed body) and response shapes."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from webhook.admission.review import (
    MAX_WARNING_LENGTH,
    MAX_WARNINGS,
    AdmissionRequest,
    BadReview,
    allowed,
    parse_review,
    patched,
    render,
)
from webhook.core.patch import EMPTY, make_patch

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "web-", "namespace": "from-object"},
    "spec": {"containers": [{"name": "app", "image": "nginx"}]},
}


def review(**request_changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": copy.deepcopy(POD),
        "dryRun": False,
    }
    for key, value in request_changes.items():
        if value is None:
            request.pop(key, None)
        else:
            request[key] = value
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def body(value: Any) -> bytes:
    return orjson.dumps(value)


def test_parse_valid_review() -> None:
    request = parse_review(body(review()))
    assert request == AdmissionRequest(
        uid="705ab4f5-6393-11e8-b7cc-42010a800002",
        api_version="admission.k8s.io/v1",
        operation="CREATE",
        namespace="shop",
        name="",
        object=POD,
        dry_run=False,
        username="system:serviceaccount:kube-system:replicaset-controller",
    )


def test_dry_run_and_name() -> None:
    request = parse_review(body(review(dryRun=True, name="web-1")))
    assert request.dry_run is True
    assert request.name == "web-1"
    # Only a JSON true is a dry run.
    assert parse_review(body(review(dryRun="true"))).dry_run is False
    assert parse_review(body(review(dryRun=None))).dry_run is False


def test_namespace_falls_back_to_object() -> None:
    assert parse_review(body(review(namespace=None))).namespace == "from-object"
    assert parse_review(body(review(namespace=""))).namespace == "from-object"
    bare = copy.deepcopy(POD)
    del bare["metadata"]["namespace"]
    assert parse_review(body(review(namespace=None, object=bare))).namespace == ""


def test_missing_user_info_is_empty_username() -> None:
    assert parse_review(body(review(userInfo=None))).username == ""


def test_object_kind_may_be_absent() -> None:
    obj = copy.deepcopy(POD)
    del obj["kind"]
    assert parse_review(body(review(object=obj))).object == obj


def bad(payload: bytes) -> BadReview:
    with pytest.raises(BadReview) as info:
        parse_review(payload)
    error = info.value
    assert error.status == 400
    assert "\n" not in str(error)
    return error


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty body: expected an AdmissionReview JSON object"),
        (b"  \n\t", "empty body: expected an AdmissionReview JSON object"),
        (b"{bad", "invalid JSON: unexpected character, expected a string key: line 1 column 2 (char 1)"),
        (b"[1, 2]", "expected an AdmissionReview object, got a JSON list"),
        (b'"text"', "expected an AdmissionReview object, got a JSON str"),
        (b"null", "expected an AdmissionReview object, got a JSON NoneType"),
        (
            body({"apiVersion": "admission.k8s.io/v1", "kind": "Review", "request": {}}),
            "kind is 'Review', expected 'AdmissionReview'",
        ),
        (body({"apiVersion": "admission.k8s.io/v1"}), "kind is None, expected 'AdmissionReview'"),
        (
            body({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}),
            "apiVersion is 'admission.k8s.io/v1beta1', expected 'admission.k8s.io/v1'",
        ),
        (
            body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            "AdmissionReview has no request object",
        ),
        (
            body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": []}),
            "AdmissionReview has no request object",
        ),
    ],
)
def test_malformed_envelopes(payload: bytes, message: str) -> None:
    assert str(bad(payload)) == message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uid": None}, "request.uid is missing"),
        ({"uid": ""}, "request.uid is missing"),
        ({"uid": 42}, "request.uid is missing"),
        ({"object": None}, "request.object is missing: expected a Pod"),
        ({"object": "pod"}, "request.object is missing: expected a Pod"),
        ({"operation": None}, "request.operation is missing"),
        ({"operation": ""}, "request.operation is missing"),
        ({"namespace": 7}, "request.namespace must be a string"),
    ],
)
def test_malformed_requests(changes: dict[str, Any], message: str) -> None:
    assert str(bad(body(review(**changes)))) == message


def test_deployment_is_rejected() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {}}
    payload = body(review(kind={"group": "apps", "version": "v1", "kind": "Deployment"}, object=deployment))
    assert (
        str(bad(payload))
        == "request is for 'apps/Deployment' (object kind 'Deployment'); this webhook only handles Pods"
    )


def test_core_kind_other_than_pod_is_rejected() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    payload = body(review(kind={"group": "", "version": "v1", "kind": "Service"}, object=service))
    assert str(bad(payload)) == "request is for 'Service' (object kind 'Service'); this webhook only handles Pods"


def test_pod_request_with_non_pod_object_is_rejected() -> None:
    obj = {**POD, "kind": "Deployment"}
    assert "(object kind 'Deployment')" in str(bad(body(review(object=obj))))


def test_missing_request_kind_is_rejected() -> None:
    assert str(bad(body(review(kind=None)))) == "request.kind is missing: expected group '', version v1, kind Pod"


def test_bad_review_status_is_configurable() -> None:
    assert BadReview("too big", status=413).status == 413


def request() -> AdmissionRequest:
    return parse_review(body(review()))


def test_allowed_shape() -> None:
    assert allowed(request()) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True},
    }


def test_allowed_with_warnings() -> None:
    response = allowed(request(), ["one", "two"])["response"]
    assert response["warnings"] == ["one", "two"]


def test_patched_shape_and_patch_decodes() -> None:
    patch = make_patch({"metadata": {}}, {"metadata": {"annotations": {"a/b": "c"}}})
    answer = patched(request(), patch, ["note"])
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert set(response) == {"uid", "allowed", "patchType", "patch", "warnings"}
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert orjson.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "c"}}
    ]
    assert response["warnings"] == ["note"]


def test_patched_with_empty_patch_is_allowed() -> None:
    assert patched(request(), EMPTY) == allowed(request())


def test_warnings_are_clipped_and_limited() -> None:
    warnings = ["x" * 300, "short", "line one\nline two\r\nthree", *[f"w{i}" for i in range(20)]]
    sent = allowed(request(), warnings)["response"]["warnings"]
    assert len(sent) == MAX_WARNINGS == 10
    assert sent[0] == "x" * (MAX_WARNING_LENGTH - 3) + "..."
    assert len(sent[0]) == MAX_WARNING_LENGTH == 256
    assert sent[1] == "short"
    assert "\n" not in sent[2]
    assert "\r" not in sent[2]
    assert sent[2].startswith("line one line two")
    assert sent[3:] == [f"w{i}" for i in range(7)]


def test_warning_of_exactly_max_length_is_kept() -> None:
    assert allowed(request(), ["y" * 256])["response"]["warnings"] == ["y" * 256]


def test_render_round_trips() -> None:
    answer = allowed(request(), ["w"])
    assert orjson.loads(render(answer)) == answer


@pytest.mark.parametrize("metadata", ["web", ["web"], 3])
def test_object_metadata_that_is_not_an_object_is_a_bad_review(metadata: Any) -> None:
    obj = {**POD, "metadata": metadata}
    assert str(bad(body(review(namespace=None, object=obj)))) == "request.object.metadata must be an object"
    assert str(bad(body(review(object=obj)))) == "request.object.metadata must be an object"
