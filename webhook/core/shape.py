"""Type confusion in a pod, found once and answered the same way everywhere.

The injector reads a handful of a pod's fields. This module checks that each one it reads
has the JSON type Kubernetes gives it, so the rules and the mutation behind it can rely on
the shape instead of guarding every access (and so no odd shape can reach them as an
internal error with a traceback). Two rules, the apiserver's own:

* ``null`` means absent, for every field (Go decodes a JSON null into the zero value).
* Any other wrong type is a malformed pod: the apiserver would refuse to decode it. The
  webhook answers it with a 400 naming the field (:mod:`webhook.admission.review`);
  ``otel-injector inject`` leaves that pod spec as it is, with the same message.

One pass over the containers and their env: linear in the pod's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.bounds import a_json_type, clip, describe

# Fields of ObjectMeta the injector reads, and the JSON type each must have.
_METADATA_STRINGS = ("name", "generateName", "namespace")
_METADATA_MAPS = ("labels", "annotations")
_CONTAINER_LISTS = ("containers", "initContainers")


class ShapeError(ValueError):
    """A field the injector reads has the wrong JSON type; the message names the field."""


_WANTED: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


def _expect(value: Any, kind: type, path: str) -> None:
    if value is not None and not isinstance(value, kind):
        wanted = _WANTED[kind]
        raise ShapeError(f"{path} must be {wanted}, not {a_json_type(value)}")


def _string_keys(mapping: Mapping[Any, Any], path: str) -> None:
    for key in mapping:
        if not isinstance(key, str):
            raise ShapeError(f"{path} has a key that is not a string: {describe(key)}")


def check_pod_shape(pod: Mapping[str, Any]) -> None:
    """Raise :class:`ShapeError` if a field the injector reads has the wrong type.

    ``null`` anywhere counts as absent. Paths are relative to the pod, e.g.
    ``spec.containers[2].env``."""
    metadata = pod.get("metadata")
    _expect(metadata, dict, "metadata")
    if metadata:
        for name in _METADATA_STRINGS:
            _expect(metadata.get(name), str, f"metadata.{name}")
        for name in _METADATA_MAPS:
            value = metadata.get(name)
            _expect(value, dict, f"metadata.{name}")
            if value:
                _string_keys(value, f"metadata.{name}")
        owners = metadata.get("ownerReferences")
        _expect(owners, list, "metadata.ownerReferences")
    spec = pod.get("spec")
    _expect(spec, dict, "spec")
    if not spec:
        return
    for field in _CONTAINER_LISTS:
        containers = spec.get(field)
        _expect(containers, list, f"spec.{field}")
        for index, container in enumerate(containers or ()):
            # The hot loop of a large pod: exact type checks, paths built only for an error.
            if type(container) is not dict and not isinstance(container, dict):
                raise ShapeError(f"spec.{field}[{index}] must be an object, not {a_json_type(container)}")
            container_name = container.get("name")
            if container_name is not None and type(container_name) is not str:
                _expect(container_name, str, f"spec.{field}[{index}].name")
            for list_field in ("env", "ports"):
                items = container.get(list_field)
                if items is None:
                    continue
                if type(items) is not list:
                    _expect(items, list, f"spec.{field}[{index}].{list_field}")
                for item_index, item in enumerate(items):
                    if type(item) is not dict and not isinstance(item, dict):
                        raise ShapeError(
                            f"spec.{field}[{index}].{list_field}[{item_index}] must be an object, "
                            f"not {a_json_type(item)}"
                        )
                    if list_field == "env":
                        var = item.get("name")
                        if var is not None and type(var) is not str:
                            _expect(var, str, f"spec.{field}[{index}].env[{item_index}].name")
    volumes = spec.get("volumes")
    _expect(volumes, list, "spec.volumes")
    for index, volume in enumerate(volumes or ()):
        if not isinstance(volume, dict):
            raise ShapeError(f"spec.volumes[{index}] must be an object, not {a_json_type(volume)}")


def shape_problem(pod: Mapping[str, Any]) -> str | None:
    """The :class:`ShapeError` message for ``pod``, or ``None`` when its shape is usable."""
    try:
        check_pod_shape(pod)
    except ShapeError as err:
        return clip(str(err), 256)
    return None
