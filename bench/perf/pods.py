"""The pod shapes the bench sends, and the AdmissionReview bodies around them.

* ``typical``: what the ReplicaSet controller creates for an ordinary Deployment, as the
  webhook sees it after the built-in mutating plugins ran: an app container, a log
  shipper and a proxy, each with env, probes, resources and mounts; generateName, the
  owner reference, managedFields, the service-account token volume, default
  tolerations. About 10 KB of JSON.
* ``large``: 50 containers with 2,000 env vars in all (40 each).
* ``injected``: the typical pod after injection, sent again (the skip path).

Everything is deterministic: the same shape always serializes to the same bytes.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from webhook.core.injection import inject_pod
from webhook.core.settings import InjectionSettings

NAMESPACE = "shop"
SHAPES = ("typical", "large", "injected")


def _env(container_name: str, count: int) -> list[dict[str, Any]]:
    prefix = container_name.upper().replace("-", "_")
    env: list[dict[str, Any]] = []
    for i in range(count):
        if i % 10 == 3:
            env.append(
                {
                    "name": f"{prefix}_SECRET_{i}",
                    "valueFrom": {"secretKeyRef": {"name": f"{container_name}-secrets", "key": f"key-{i}"}},
                }
            )
        elif i % 10 == 7:
            env.append({"name": f"{prefix}_POD_IP_{i}", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        else:
            env.append({"name": f"{prefix}_SETTING_{i}", "value": f"value-{i}-for-{container_name}"})
    return env


def _probe(path: str, port: int, initial: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": initial,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


def container(name: str, image: str, port: int, env_count: int) -> dict[str, Any]:
    """A fully defaulted container, as the apiserver hands it to admission."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--config=/etc/app/config.yaml", f"--port={port}", "--log-format=json"],
        "ports": [
            {"name": f"http-{name}"[:15], "containerPort": port, "protocol": "TCP"},
            {"name": f"mon-{name}"[:15], "containerPort": port + 1000, "protocol": "TCP"},
        ],
        "env": _env(name, env_count),
        "envFrom": [{"configMapRef": {"name": f"{name}-config"}}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/app", "readOnly": True},
            {"name": "data", "mountPath": "/var/lib/app"},
            {
                "name": "kube-api-access-7xk2q",
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            },
        ],
        "livenessProbe": _probe("/healthz", port, 10),
        "readinessProbe": _probe("/readyz", port, 5),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def _managed_fields(names: list[str]) -> list[dict[str, Any]]:
    containers = {
        f'k:{{"name":"{n}"}}': {
            ".": {},
            "f:args": {},
            "f:env": {},
            "f:image": {},
            "f:imagePullPolicy": {},
            "f:livenessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}}},
            "f:name": {},
            "f:ports": {},
            "f:readinessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}}},
            "f:resources": {".": {}, "f:limits": {}, "f:requests": {}},
            "f:securityContext": {},
            "f:volumeMounts": {},
        }
        for n in names
    }
    return [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2025-01-07T10:15:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:generateName": {}, "f:labels": {}, "f:ownerReferences": {}},
                "f:spec": {"f:containers": containers, "f:volumes": {}},
            },
        }
    ]


def pod(containers: list[dict[str, Any]], *, name: str = "checkout") -> dict[str, Any]:
    """A Deployment's pod around ``containers``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{name}-6d4cf56db6-",
            "namespace": NAMESPACE,
            "uid": "5f0f2c5a-0b7e-4a4e-9d7e-2b9f6b1f3c11",
            "creationTimestamp": "2025-01-07T10:15:00Z",
            "labels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/part-of": "shop",
                "app.kubernetes.io/version": "2.14.1",
                "pod-template-hash": "6d4cf56db6",
            },
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2025-01-07T10:14:58Z",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{name}-6d4cf56db6",
                    "uid": "8b8f2e36-3f39-4a52-9a7e-1d3d8f6f3c11",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": _managed_fields([c["name"] for c in containers]),
        },
        "spec": {
            "containers": containers,
            "volumes": [
                {"name": "config", "configMap": {"name": f"{name}-config", "defaultMode": 420}},
                {"name": "data", "emptyDir": {}},
                {
                    "name": "kube-api-access-7xk2q",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                },
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                                "topologyKey": "kubernetes.io/hostname",
                            },
                        }
                    ]
                }
            },
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        },
    }


def typical_pod() -> dict[str, Any]:
    """About 10 KB: the app, a log shipper and a proxy."""
    return pod(
        [
            container("checkout", "registry.example/shop/checkout:2.14.1", 8080, 24),
            container("log-shipper", "registry.example/infra/fluent-bit:3.1", 2020, 8),
            container("proxy", "registry.example/infra/envoy:1.31", 15001, 8),
        ]
    )


def sized_pod(containers: int, env_total: int) -> dict[str, Any]:
    """``containers`` containers sharing ``env_total`` env vars (spread evenly)."""
    per, extra = divmod(env_total, containers)
    return pod(
        [
            container(f"c{i}", f"registry.example/shop/part-{i}:1.0", 8000 + i, per + (1 if i < extra else 0))
            for i in range(containers)
        ],
        name="monolith",
    )


def large_pod() -> dict[str, Any]:
    """50 containers, 2,000 env vars in all."""
    return sized_pod(50, 2000)


def injected_pod(settings: InjectionSettings | None = None) -> dict[str, Any]:
    """The typical pod as it looks after injection: the webhook must skip it."""
    result = inject_pod(typical_pod(), settings or InjectionSettings(), namespace=NAMESPACE)
    assert result.injected
    return copy.deepcopy(dict(result.pod))


def shape(name: str) -> dict[str, Any]:
    """One of :data:`SHAPES`."""
    if name == "typical":
        return typical_pod()
    if name == "large":
        return large_pod()
    if name == "injected":
        return injected_pod()
    raise ValueError(f"unknown pod shape {name!r}; known: {', '.join(SHAPES)}")


def review(pod_: dict[str, Any], *, uid: str = "00000000-0000-4000-8000-000000000000") -> dict[str, Any]:
    """An AdmissionReview as the apiserver sends it for a CREATE of ``pod_``."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NAMESPACE,
            "name": "",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "2a3e9b8c-4a1d-4b8e-9e1f-0c6d5e7f8a9b",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            },
            "object": pod_,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def review_body(shape_name: str) -> bytes:
    """The serialized AdmissionReview for a pod shape."""
    return orjson.dumps(review(shape(shape_name)))
