"""Resource attributes by the OpenTelemetry conventions for Kubernetes, beyond the ``k8s.*``
names :mod:`webhook.core.appenv` always sets.

The rules follow the semantic conventions' "Populating resource attributes in Kubernetes"
page (``docs/non-normative/k8s-attributes.md``), with the sources issue 12 names:

* a pod annotation ``resource.opentelemetry.io/<key>: <value>`` becomes the attribute
  ``<key>``, and wins over every attribute derived below (``service.name`` goes to
  ``OTEL_SERVICE_NAME`` instead, see :attr:`PodResource.service_name`);
* ``service.version``: the label ``app.kubernetes.io/version``, else the container image's
  tag. A digest is not a version (the page also allows ``<tag>@<digest>``; the issue asks
  for the tag), and neither is ``latest``;
* ``service.namespace``: the label ``app.kubernetes.io/part-of``;
* ``service.instance.id``: ``<k8s.namespace.name>.<k8s.pod.name>.<k8s.container.name>``,
  the pod name through the same downward-API helper as ``k8s.pod.name``;
* ``k8s.replicaset.name`` from the pod's ReplicaSet owner (``k8s.job.name`` and
  ``k8s.cronjob.name`` come with the workload, :mod:`webhook.core.workload`).

What the user set themselves still wins over all of it: a key already in their own
``OTEL_RESOURCE_ATTRIBUTES`` is never added again (:mod:`webhook.core.appenv`).

Values are percent-encoded as the OTel SDK environment spec asks (W3C Baggage values:
``,``, ``;``, ``"``, backslash, whitespace, controls and non-ASCII must be encoded; SDKs
percent-decode every value). A user's value is encoded whole, ``$`` included, so the
kubelet never expands a ``$(VAR)`` in it; keys are never encoded, so only keys that need no
encoding are accepted. Pure, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from webhook.core import names
from webhook.core.bounds import MAX_LABEL_LENGTH, MAX_NAME_LENGTH, cap, clip
from webhook.core.overrides import Notice
from webhook.core.workload import Workload

ANNOTATION_PREFIX = "resource.opentelemetry.io/"
VERSION_LABEL = "app.kubernetes.io/version"
PART_OF_LABEL = "app.kubernetes.io/part-of"
#: Most ``resource.opentelemetry.io/*`` annotations copied; each goes into every container.
MAX_ANNOTATED = 32
#: Longest annotation value copied (characters, before encoding). OTel sets no limit; this
#: bounds the env of a pod to ``MAX_ANNOTATED`` x 3 x this many bytes per container at most.
MAX_VALUE_LENGTH = 255

# The name part of a Kubernetes annotation key (at most 63 characters): no "=", ",", "%"
# or space, so it needs no encoding and cannot break the key=value list.
_KEY = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The tag grammar of an OCI reference.
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_POD_NAME_REF = f"$({names.APP_DOWNWARD_ENV[0][0]})"
# Values that quote() would return unchanged. Nearly every derived value is one (Kubernetes
# names, tags, our $(...) references), and the check costs about half of quote() itself
# (0.9 vs 1.8 µs for a service.instance.id here): with ten values per container that is
# about 9 µs a container, 450 µs on a 50-container pod.
_PLAIN = re.compile(r"[A-Za-z0-9_.~$()-]*\Z")


class Encoded(str):
    """An attribute value that is already percent-encoded; formatting leaves it as it is."""

    __slots__ = ()


@dataclass(frozen=True)
class PodResource:
    """The pod-wide inputs of the conventions' attributes, read once per pod.

    ``derived`` go after the ``k8s.*`` names (``k8s.replicaset.name``,
    ``service.namespace``); ``version`` is the label's, ``None`` to use each container's
    image tag; ``annotated`` are the user's, already encoded, and win over the rest.
    """

    derived: tuple[tuple[str, str], ...] = ()
    version: str | None = None
    annotated: tuple[tuple[str, str], ...] = ()
    service_name: str | None = None


NO_RESOURCE = PodResource()


def read_pod_resource(
    metadata: Mapping[str, Any],
    labels: Mapping[str, Any],
    annotations: Mapping[str, Any],
    workload: Workload | None = None,
) -> tuple[PodResource, list[Notice]]:
    """The pod's :class:`PodResource` and a notice per annotation or value left out.

    ``workload`` is the owner the caller works with: when it is the ReplicaSet itself (one
    without a Deployment), its own attributes already name it.

    Rejected, with a warning that names the annotation and why: a key that is not a
    Kubernetes annotation name (empty, over 63 characters, or other characters than
    letters, digits, ``-``, ``_`` and ``.``); a value that is not text, is empty, has
    control characters or is longer than :data:`MAX_VALUE_LENGTH`; and annotations beyond
    the first :data:`MAX_ANNOTATED` (in key order), counted in one line.
    """
    notices: list[Notice] = []
    derived: list[tuple[str, str]] = []
    replicaset = None if workload is not None and workload.kind == "ReplicaSet" else _replicaset_name(metadata, labels)
    if replicaset is not None:
        if len(replicaset) > MAX_NAME_LENGTH:
            notices.append(_capped("the ReplicaSet name", len(replicaset), MAX_NAME_LENGTH))
            replicaset = cap(replicaset, MAX_NAME_LENGTH)
        derived.append(("k8s.replicaset.name", replicaset))
    part_of = _label(labels, PART_OF_LABEL, notices)
    if part_of is not None:
        derived.append(("service.namespace", part_of))
    version = _label(labels, VERSION_LABEL, notices)

    annotated: list[tuple[str, str]] = []
    service_name: str | None = None
    keys = sorted(k for k in annotations if isinstance(k, str) and k.startswith(ANNOTATION_PREFIX))
    for annotation in keys[:MAX_ANNOTATED]:
        key = annotation.removeprefix(ANNOTATION_PREFIX)
        value, why = _value(annotations[annotation])
        if not _KEY.match(key):
            why = (
                "is not a valid attribute key (1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)"
            )
        if why:
            notices.append(Notice("invalid-resource-attribute", f"{clip(annotation)}: {why}; ignored"))
        elif key == "service.name":
            service_name = value  # OTEL_SERVICE_NAME, which SDKs prefer over the attribute
        else:
            annotated.append((key, Encoded(quote(value, safe=""))))
    if len(keys) > MAX_ANNOTATED:
        notices.append(
            Notice(
                "invalid-resource-attribute",
                f"{len(keys) - MAX_ANNOTATED:,} {ANNOTATION_PREFIX} annotations beyond the first {MAX_ANNOTATED} "
                "ignored",
            )
        )
    resource = PodResource(tuple(derived), version, tuple(annotated), service_name)
    return (NO_RESOURCE if resource == NO_RESOURCE else resource), notices


def container_attributes(
    resource: PodResource,
    k8s: Sequence[tuple[str, str]],
    *,
    namespace: str,
    container_name: str,
    image: object,
) -> list[tuple[str, str]]:
    """All attributes of one container: ``k8s`` (the ``k8s.*`` names), the derived ones,
    ``service.version`` and ``service.instance.id``, then the annotated ones, each key
    once, an annotated key replacing a derived one."""
    attrs = [*k8s, *resource.derived]
    version = resource.version if resource.version is not None else image_tag(image)
    if version is not None:
        attrs.append(("service.version", version))
    attrs.append(("service.instance.id", f"{namespace}.{_POD_NAME_REF}.{container_name}"))
    if not resource.annotated:
        return attrs
    annotated = dict(resource.annotated)
    return [(k, v) for k, v in attrs if k not in annotated] + list(resource.annotated)


def image_tag(image: object) -> str | None:
    """The tag of an image reference, ``None`` when it has none, only a digest, or
    ``latest``. ``registry:5000/app`` has no tag (the colon belongs to the registry, before
    the last ``/``); ``app:1.2@sha256:…`` has ``1.2``."""
    if not isinstance(image, str):
        return None
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    _, colon, tag = last.partition(":")
    if not colon or tag == "latest" or not _TAG.match(tag):
        return None
    return tag


def format_value(value: str) -> str:
    """``value`` as it goes into ``OTEL_RESOURCE_ATTRIBUTES``: an :class:`Encoded` value as
    it is; any other percent-encoded, except ``$()``, so the kubelet expands our own
    ``$(OTEL_RESOURCE_ATTRIBUTES_*)`` references (derived values are Kubernetes names and
    labels, which have no ``$`` of their own)."""
    if isinstance(value, Encoded) or _PLAIN.match(value):
        return value
    return quote(value, safe="$()")


def _value(raw: object) -> tuple[str, str]:
    """``(text, "")``, or ``("", why)`` for a value that cannot be used."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(raw)  # unquoted YAML numbers in manifests given to ``inject``
    if not isinstance(raw, str):
        return "", "the value is not text"
    text = raw.strip()
    if not text:
        return "", "the value is empty"
    if len(text) > MAX_VALUE_LENGTH:
        return "", f"the value is longer than {MAX_VALUE_LENGTH} characters ({len(text):,})"
    if _CONTROL.search(text):
        return "", "the value has control characters"
    return text, ""


def _label(labels: Mapping[str, Any], key: str, notices: list[Notice]) -> str | None:
    value = labels.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if len(value) > MAX_LABEL_LENGTH:
        notices.append(_capped(f"the label {key}", len(value), MAX_LABEL_LENGTH))
        value = cap(value, MAX_LABEL_LENGTH)
    return value


def _replicaset_name(metadata: Mapping[str, Any], labels: Mapping[str, Any]) -> str | None:
    """The pod's ReplicaSet: its controller owner of that kind, else, before the apiserver
    has named the pod, the ``generateName`` the ReplicaSet controller gives its pods
    (``<replicaset>-``, the ReplicaSet's name ending in ``-<pod-template-hash>``)."""
    raw_owners = metadata.get("ownerReferences")
    owners = [o for o in raw_owners if isinstance(o, Mapping)] if isinstance(raw_owners, list) else []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    if owner is not None:
        name = owner.get("name")
        return name if owner.get("kind") == "ReplicaSet" and isinstance(name, str) and name else None
    generate_name, template_hash = metadata.get("generateName"), labels.get("pod-template-hash")
    if not (isinstance(generate_name, str) and isinstance(template_hash, str) and template_hash):
        return None
    if generate_name.endswith(f"-{template_hash}-") and len(generate_name) > len(template_hash) + 2:
        return generate_name[:-1]
    return None


def _capped(what: str, length: int, limit: int) -> Notice:
    return Notice(
        "capped-value",
        f"{what} ({length:,} characters) is longer than Kubernetes allows ({limit}); "
        f"only its first {limit} characters are copied",
    )
