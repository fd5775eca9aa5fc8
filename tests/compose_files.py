"""Reading the project's Compose files the way Compose does, for tests that need no engine.

Only what the project's files use is modelled: YAML with merge keys and the ``!reset`` /
``!override`` tags, ``${VAR}`` interpolation with ``:-``, ``-``, ``:?`` and ``?`` (nested in
defaults), and the merge of an override file into the base (mappings merge key by key, lists
are appended, tagged values replace).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_FILE = ROOT / "compose.yaml"
OVERRIDE_FILES = (ROOT / "compose.gcp.yaml", ROOT / "compose.gcp-key.yaml")
CLUSTER_FILE = ROOT / "compose.cluster.yaml"
"""Three Cassandra nodes instead of one (``-f compose.yaml -f compose.cluster.yaml``)."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^${}]*))?\}")


@dataclass(frozen=True)
class Tagged:
    """A value carrying Compose's ``!reset`` or ``!override`` tag."""

    tag: str
    value: Any


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    value: Any
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return Tagged(node.tag, value)


_Loader.add_constructor("!reset", _tagged)
_Loader.add_constructor("!override", _tagged)


def load(path: Path) -> dict[str, Any]:
    """The file as YAML (tags kept as :class:`Tagged`)."""
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    assert isinstance(document, dict), path
    return document


def untagged(value: Any) -> Any:
    """The document with every tag dropped, as the JSON schema sees it."""
    if isinstance(value, Tagged):
        return untagged(value.value)
    if isinstance(value, dict):
        return {key: untagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [untagged(item) for item in value]
    return value


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of one override value into a base value."""
    if isinstance(override, Tagged):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else untagged(value)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override


def merged(*paths: Path) -> dict[str, Any]:
    """The project as Compose would see ``-f BASE -f OVERRIDE ...`` (before interpolation)."""
    document: dict[str, Any] = untagged(load(paths[0]))
    for path in paths[1:]:
        document = merge(document, load(path))
    return document


class MissingVariableError(LookupError):
    """A ``${VAR:?message}`` whose variable is not set."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Resolve ``${...}`` the way Compose does, innermost first."""

    def resolve(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and operator in (":-", ":?"))
        if operator in ("-", ":-"):
            return argument if unset_or_empty else str(value)
        if operator in ("?", ":?") and unset_or_empty:
            raise MissingVariableError(f"{name}: {argument}")
        return value or ""

    while True:
        text, count = _VARIABLE.subn(resolve, text)
        if not count:
            return text


def environment(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str | None]:
    """A service's environment after interpolation; ``None`` marks a pass-through variable."""
    raw = service.get("environment") or {}
    assert isinstance(raw, dict), "environment is written as a mapping in this project"
    return {
        name: None if value is None else interpolate(str(value), env) for name, value in raw.items()
    }


def variables_used(path: Path) -> set[str]:
    """Every variable name a file interpolates (including those nested in defaults)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8")))


def cassandra_nodes(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run a Cassandra node (the image ``CASSANDRA_IMAGE`` names)."""
    return {
        name: service
        for name, service in document["services"].items()
        if str(service.get("image", "")).startswith("${CASSANDRA_IMAGE")
    }
