"""Render a kustomization without kubectl, for the kustomize features k8s/ uses and no others.

Supported: resources (files and folders), components, namespace, labels (pairs,
includeTemplates), images, replicas, patches given by path whose maps merge the way a strategic
merge patch does (patches that touch lists are refused), and JSON patches (RFC 6902: add,
replace, remove) given by path with a `target` of kind and name, and configMapGenerator from
`files` (with kustomize's content-hash name suffix, and references to the ConfigMap renamed).
Any other field raises, so a manifest never depends on a feature this renderer would silently
skip.

    python tests/k8s/render.py k8s/overlays/production | kubernetes-validate --strict -
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "namespace", "labels", "resources", "components", "images"}
SUPPORTED |= {"replicas", "patches", "configMapGenerator"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}


def load_yaml(path: Path) -> list[Doc]:
    """Every non-empty document in a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(folder: Path, accumulated: list[Doc] | None = None) -> list[Doc]:
    """Build the kustomization in `folder`; a Component transforms `accumulated` in place."""
    spec = load_yaml(folder / "kustomization.yaml")[0]
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise ValueError(f"{folder}: kustomize fields the renderer does not support: {unknown}")
    docs: list[Doc] = []
    if spec["kind"] == "Component":
        if accumulated is None:
            raise ValueError(f"{folder}: a Component is only used from a kustomization")
        docs = accumulated
    for entry in spec.get("resources", []):
        path = folder / entry
        docs.extend(render(path) if path.is_dir() else load_yaml(path))
    for entry in spec.get("components", []):
        render(folder / entry, docs)
    generated = [
        _generate_config_map(folder, entry) for entry in spec.get("configMapGenerator", [])
    ]
    docs.extend(generated)
    for patch in spec.get("patches", []):
        if "target" in patch:
            _json_patch(docs, patch["target"], yaml.safe_load((folder / patch["path"]).read_text()))
        else:
            _patch(docs, load_yaml(folder / patch["path"])[0])
    if "namespace" in spec:
        _set_namespace(docs, spec["namespace"])
    for label in spec.get("labels", []):
        _add_labels(docs, label)
    for rule in spec.get("replicas", []):
        for doc in docs:
            if doc["kind"] in SCALABLE and doc["metadata"]["name"] == rule["name"]:
                doc["spec"]["replicas"] = rule["count"]
    for rule in spec.get("images", []):
        _set_images(docs, rule)
    renames = {}
    for config in generated:
        old_name = config["metadata"]["name"]
        config["metadata"]["name"] = f"{old_name}-{config_map_hash(config)}"
        renames[old_name] = config["metadata"]["name"]
    _rename_config_maps(docs, renames)
    return docs


def _generate_config_map(folder: Path, entry: Doc) -> Doc:
    if set(entry) - {"name", "files"}:
        raise ValueError(f"unsupported configMapGenerator entry {entry}")
    data = {}
    for item in entry["files"]:
        key, _, path = item.rpartition("=")
        data[key or Path(path).name] = (folder / path).read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": entry["name"]},
        "data": data,
    }


def config_map_hash(config: Doc) -> str:
    """kustomize's name suffix: sha256 of Go's JSON of {data, kind, name}, 10 chars, re-lettered.

    kustomize looks the name up as the single field "metadata/name", which never exists, so the
    name it hashes is always "" (checked against `kubectl kustomize`).
    """
    encoded = json.dumps(
        {"data": config.get("data", {}), "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        encoded = encoded.replace(char, escaped)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _rename_config_maps(node: Any, renames: dict[str, str]) -> None:
    """Point volumes, envFrom and configMapKeyRef at the generated (suffixed) names."""
    if isinstance(node, list):
        for item in node:
            _rename_config_maps(item, renames)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("configMap", "configMapRef", "configMapKeyRef") and isinstance(value, dict):
                value["name"] = renames.get(value.get("name", ""), value.get("name"))
            else:
                _rename_config_maps(value, renames)


def _patch(docs: list[Doc], patch: Doc) -> None:
    meta = patch["metadata"]
    targets = [
        d
        for d in docs
        if d["kind"] == patch["kind"]
        and d["metadata"]["name"] == meta["name"]
        and meta.get("namespace", d["metadata"].get("namespace")) == d["metadata"].get("namespace")
    ]
    if len(targets) != 1:
        raise ValueError(f"patch {patch['kind']}/{meta['name']} matches {len(targets)} resources")
    _merge(targets[0], {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")})


def _json_patch(docs: list[Doc], target: Doc, ops: list[Doc]) -> None:
    if set(target) - {"kind", "name"} or not isinstance(ops, list):
        raise ValueError(f"only JSON patches targeted by kind and name are supported: {target}")
    targets = [
        d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
    ]
    if len(targets) != 1:
        raise ValueError(f"patch target {target} matches {len(targets)} resources")
    for op in ops:
        *parents, last = [
            part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]
        ]
        node: Any = targets[0]
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if op["op"] not in ("add", "replace", "remove"):
            raise ValueError(f"unsupported JSON patch op {op['op']!r}")
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if op["op"] != "add":
                node.pop(index)
            if op["op"] != "remove":
                node.insert(index, copy.deepcopy(op["value"]))
        elif op["op"] == "remove" or (op["op"] == "replace" and last not in node):
            del node[last]
        else:
            node[last] = copy.deepcopy(op["value"])


def _merge(into: Doc, patch: Doc) -> None:
    for key, value in patch.items():
        if isinstance(value, list):
            raise ValueError(f"patch sets the list {key!r}; list merges are not supported")
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _set_namespace(docs: list[Doc], namespace: str) -> None:
    for doc in docs:
        if doc["kind"] == "Namespace":
            doc["metadata"]["name"] = namespace
        elif doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = namespace


def _add_labels(docs: list[Doc], label: Doc) -> None:
    if label.get("includeSelectors") or set(label) - {"pairs", "includeTemplates"}:
        raise ValueError(f"unsupported labels entry {label}")
    for doc in docs:
        doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        template = doc.get("spec", {}).get("template")
        if label.get("includeTemplates") and isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])


def split_image(image: str) -> tuple[str, str, str]:
    """`registry:5000/a/b:tag@sha256:..` -> (name, tag, digest); missing parts are ''."""
    name, _, digest = image.partition("@")
    head, _, tag = name.rpartition(":")
    if not head or "/" in tag:
        return name, "", digest
    return head, tag, digest


def _set_images(node: Any, rule: Doc) -> None:
    if isinstance(node, list):
        for item in node:
            _set_images(item, rule)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers"):
                for container in value:
                    container["image"] = _retag(container["image"], rule)
            else:
                _set_images(value, rule)


def _retag(image: str, rule: Doc) -> str:
    name, tag, digest = split_image(image)
    if name != rule["name"]:
        return image
    name = str(rule.get("newName", name))
    if "digest" in rule:
        return f"{name}@{rule['digest']}"
    if "newTag" in rule:
        return f"{name}:{rule['newTag']}"
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


if __name__ == "__main__":
    yaml.safe_dump_all(render(Path(sys.argv[1])), sys.stdout, sort_keys=False)
