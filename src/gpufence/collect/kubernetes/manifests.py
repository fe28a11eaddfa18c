"""Read Kubernetes manifests from files and directories (YAML, multi-document, Helm output, JSON).

Besides ordinary objects (and ``*List`` objects, whose items are unpacked) two non-object inputs
are understood, because that is how GPU settings are often saved:

- a bare NVIDIA k8s-device-plugin config file (``version: v1`` with ``sharing``/``flags``) becomes
  a ``DevicePluginConfig.gpufence.io`` object named after the file;
- a node-label dump (``kubectl get node N -o jsonpath='{.metadata.labels}' > N.json``: a flat map
  of label -> string) becomes a ``Node`` named after the file with those labels.

Anything else that is not a Kubernetes object (Helm values, ...) is skipped with a note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpufence._yaml import (
    KubernetesYamlLoader,
    Position,
    Yaml12Loader,
    index_positions,
    unbuildable_scalar,
    unpack_position,
)
from gpufence.errors import InputError, SourceLocation
from gpufence.kubernetes.objects import DEVICE_PLUGIN_CONFIG, ClusterState, K8sObject, Pointer

__all__ = ["load_manifests"]

_SUFFIXES = {".yaml", ".yml", ".json"}


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in _SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: no such manifest file or directory")
    return out


class _ManifestLoader(KubernetesYamlLoader):
    """YAML 1.2 booleans, no timestamps (Kubernetes reads YAML as JSON), and duplicate keys are
    errors (PyYAML keeps the last one silently)."""

    source: Path = Path("<input>")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    mark = key_node.start_mark
                    raise InputError(
                        f"duplicate key {key_node.value!r}",
                        location=SourceLocation(self.source, mark.line + 1, mark.column + 1),
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _DocumentSpan:
    """Where one YAML document is in its file, to find value positions again when asked."""

    path: Path
    text: str
    start: int
    end: int
    line: int

    def locate(self, pointer: Pointer) -> tuple[int, int] | None:
        """Line/column of ``pointer`` (or its nearest ancestor) by re-reading this document."""
        # Blank lines keep the line numbers of the file; the document starts at column 1.
        chunk = "\n" * (self.line - 1) + self.text[self.start : self.end]
        loader = Yaml12Loader(chunk)
        try:
            node = loader.get_single_node()
            values: dict[Pointer, Position] = {}
            if node is not None:
                index_positions(node, (), values, {}, self.path)
        except (yaml.YAMLError, InputError):
            return None
        finally:
            loader.dispose()
        probe = pointer
        while probe:
            if probe in values:
                return unpack_position(values[probe])
            probe = probe[:-1]
        return None


def _documents(path: Path, text: str) -> Iterator[tuple[Any, _DocumentSpan]]:
    """(data, where it is) for every non-empty document in ``text``."""
    loader = _ManifestLoader(text)
    loader.source = path
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            span = _DocumentSpan(
                path, text, node.start_mark.index, node.end_mark.index, node.start_mark.line + 1
            )
            try:
                data = loader.construct_document(node)
            except yaml.YAMLError:
                raise
            except ValueError as exc:  # a scalar its tag cannot build (0b_)
                raise unbuildable_scalar(loader, node, path) or exc from exc
            yield data, span
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = SourceLocation(path, mark.line + 1, mark.column + 1) if mark else None
        raise InputError(
            f"invalid YAML: {exc.problem or exc.context or 'syntax error'}", location=location
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", location=SourceLocation(path)) from exc
    finally:
        loader.dispose()


def _locator(
    span: _DocumentSpan, prefix: Pointer = (), strip: Pointer = ()
) -> Callable[[Pointer], tuple[int, int] | None]:
    """Pointer in the object -> position: drop ``strip`` (synthetic wrapper), add ``prefix``."""

    def locate(pointer: Pointer) -> tuple[int, int] | None:
        if strip and pointer[: len(strip)] == strip:
            pointer = pointer[len(strip) :]
        return span.locate((*prefix, *pointer))

    return locate


def _object(
    data: Mapping[str, Any], source: str, span: _DocumentSpan, prefix: Pointer = ()
) -> K8sObject:
    meta = data.get("metadata") if isinstance(data.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    namespace = meta.get("namespace")
    line = span.line
    if prefix:
        line = (span.locate(prefix) or (line, 1))[0]
    return K8sObject(
        api_version=str(data["apiVersion"]),
        kind=str(data["kind"]),
        name=str(meta.get("name") or meta.get("generateName") or "<unnamed>"),
        namespace=str(namespace) if namespace else None,
        body=data,
        source=source,
        line=line,
        column=1,
        locator=_locator(span, prefix),
    )


def _is_label_dump(data: Mapping[Any, Any]) -> bool:
    return bool(data) and all(
        isinstance(k, str) and isinstance(v, str) and ("/" in k or "." in k)
        for k, v in data.items()
    )


def _is_device_plugin_config(data: Mapping[Any, Any]) -> bool:
    return str(data.get("version")) == "v1" and bool({"sharing", "flags"} & set(data))


def _objects_in(path: Path) -> tuple[list[K8sObject], list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    source = str(path)
    objects: list[K8sObject] = []
    notes: list[str] = []
    for data, span in _documents(path, text):
        line = span.line
        if not isinstance(data, Mapping):
            notes.append(f"{source}:{line}: skipped: not a mapping")
            continue
        if "apiVersion" in data and "kind" in data:
            items = data.get("items")
            if str(data["kind"]).endswith("List") and isinstance(items, list):
                objects.extend(
                    _object(item, source, span, ("items", i))
                    for i, item in enumerate(items)
                    if isinstance(item, Mapping) and "kind" in item and "apiVersion" in item
                )
            else:
                objects.append(_object(data, source, span))
        elif _is_device_plugin_config(data):
            body = {"metadata": {"name": path.stem}, "config": dict(data)}
            objects.append(
                K8sObject(
                    "gpufence.io/v1",
                    DEVICE_PLUGIN_CONFIG,
                    path.stem,
                    None,
                    body,
                    source,
                    line,
                    1,
                    _locator(span, strip=("config",)),
                )
            )
        elif _is_label_dump(data):
            body = {"metadata": {"name": path.stem, "labels": dict(data)}}
            locate = _locator(span, strip=("metadata", "labels"))
            objects.append(K8sObject("v1", "Node", path.stem, None, body, source, line, 1, locate))
        else:
            notes.append(f"{source}:{line}: skipped: not a Kubernetes object (no apiVersion/kind)")
    return objects, notes


def load_manifests(paths: Iterable[Path]) -> ClusterState:
    """Every object in ``paths`` (files or directories of .yaml/.yml/.json)."""
    files = _files(paths)
    objects: list[K8sObject] = []
    notes: list[str] = []
    for path in files:
        found, skipped = _objects_in(path)
        objects.extend(found)
        notes.extend(skipped)
    return ClusterState(
        objects=tuple(objects), sources=tuple(str(p) for p in files), notes=tuple(notes)
    )
