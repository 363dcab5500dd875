"""Config machinery: the strict pydantic base model and YAML loading with path-and-line errors.

:func:`load_config` reads a YAML file and validates it against any pydantic model; every problem
becomes one :class:`~adsim.errors.ConfigError` naming the file, the line and the path inside the
file, e.g. ``quickstart.yaml:7: world.n_ads: must be >= 2, got 0``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
)

from adsim.errors import ConfigError


__all__ = [
    "read_yaml",
    "load_yaml_mapping",
    "StrictModel",
    "unique_candidate_names",
    "parse_config",
    "load_config",
]


def unique_candidate_names(candidates: list[Any]) -> list[Any]:
    """Validator body: every candidate's label (``name``, else ``type``) must be unique."""
    seen: set[str] = set()
    for i, c in enumerate(candidates):
        label = c.name or c.type
        if label in seen:
            raise ValueError(
                f"candidate {i} has the same name {label!r} as an earlier one; give it a"
                " distinct 'name'"
            )
        seen.add(label)
    return candidates


class StrictModel(BaseModel):
    """Base for every user-facing config: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ------------------------------------------------------------------------- loading and errors
M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "missing": "is required but missing",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must not be empty",
    "finite_number": "must be a finite number",
}


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop the discriminator tags pydantic inserts into union locations (e.g. 'softmax')."""
    cleaned: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                cleaned.append(part)
                node = node[part]
                continue
            if isinstance(part, str) and node.get("type") == part:
                continue  # union tag
            cleaned.append(part)
            node = None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            cleaned.append(part)
            node = node[part]
        else:
            cleaned.append(part)
            node = None
    return tuple(cleaned)


def _num(v: Any) -> Any:
    """1.0 -> 1 so bounds read as written in the schema."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return int(v)
    return v


def _describe_error(err: dict[str, Any]) -> str:
    etype = err["type"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if etype == "extra_forbidden":
        return "unknown key; remove it or check its spelling"
    if etype == "union_tag_invalid":
        return (
            f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        )
    if etype == "union_tag_not_found":
        return f"needs a 'type' key (one of {ctx.get('discriminator', 'the known types')})"
    if etype in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected')}, got {given!r}"
    if etype == "value_error":
        return str(ctx.get("error", err["msg"]))
    template = _MESSAGES.get(etype)
    nice = {k: _num(v) for k, v in ctx.items()}
    msg = template.format(**nice) if template else err["msg"]
    if etype != "missing" and not isinstance(given, (dict, list)):
        msg += f", got {given!r}"
    return msg


def _yaml_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node along ``loc`` (or None)."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def parse_config(data: Any, model: type[M], source: str = "<config>", root: Any = None) -> M:
    """Validate already-loaded ``data`` against ``model``; raise :class:`ConfigError` on failure.

    ``root`` is the composed YAML node tree, used to add line numbers to messages.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the file must contain a mapping of keys to values at the top level,"
            f" found {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = _clean_loc(tuple(err["loc"]), data)
            line = _yaml_line(root, loc) if root is not None else None
            where = f"{source}:{line}" if line else source
            lines.append(f"{where}: {_format_loc(loc)}: {_describe_error(err)}")
        raise ConfigError("\n".join(lines)) from None


def read_yaml(path: str | os.PathLike[str]) -> tuple[Any, yaml.Node | None]:
    """Read a YAML file: ``(data, composed node tree)``; every failure is a :class:`ConfigError`.

    The one door through which adsim reads YAML (scenarios, training configs, the build cache).
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: file not found; check the path")
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder; pass a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the file ({exc})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{p}: the file is empty; see scenarios/quickstart.yaml for an example")
    return data, root


def load_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML file that must hold a mapping at the top level (ConfigError otherwise)."""
    data, _ = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the file must contain a mapping of keys to values at the top level,"
            f" found {type(data).__name__}"
        )
    return data


def load_config(path: str | os.PathLike[str], model: type[M]) -> M:
    """Read a YAML file and validate it against ``model``; every failure is a ConfigError."""
    data, root = read_yaml(path)
    return parse_config(data, model, source=str(Path(path)), root=root)
