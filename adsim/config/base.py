"""Config machinery: the strict pydantic base model and YAML loading with path-and-line errors.

:func:`load_config` reads a YAML file and validates it against any pydantic model; every problem
becomes one :class:`~adsim.errors.ConfigError` naming the file, the line and the path inside the
file, e.g. ``quickstart.yaml:7: world.n_ads: must be >= 2, got 0``.

:func:`read_yaml` is the one door through which adsim reads YAML. It refuses anything but a
regular file (FIFOs, devices, ``/dev/zero``), files over ``ADSIM_MAX_YAML_BYTES`` (1 MiB by
default), duplicate keys (naming both lines), more than :data:`MAX_ALIASES` aliases, documents
that expand to more than :data:`MAX_YAML_NODES` values through aliases (alias bombs), recursive
aliases and nesting deeper than :data:`MAX_YAML_DEPTH`. :class:`StrictModel` rejects
non-finite floats (``.inf``, ``.nan``), booleans where numbers are expected and strings where
only numbers are; error messages never reprint a huge value.
"""

from __future__ import annotations

import os
import re
import stat
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    model_validator,
)

from adsim.errors import ConfigError

__all__ = [
    "MAX_ALIASES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "FieldError",
    "SafeName",
    "Label",
    "MAX_MONEY",
    "max_yaml_bytes",
    "short_repr",
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


class FieldError(ValueError):
    """A validator's error about another field than the one validated: ``loc`` is its path
    (e.g. ``("world", "n_users")``), so the message gets that field's line."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = tuple(loc)


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages never reprint huge values)."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 20:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value)
    except RecursionError:  # pragma: no cover - recursive structures are refused earlier
        return f"<recursive {type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 15] + f"… ({len(text):,} chars)"
    return text


def _safe_name(v: str) -> str:
    bad = [c for c in v if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ValueError("must not contain control characters (newlines, tabs, NUL …)")
    if "/" in v or "\\" in v or v in (".", "..") or v.startswith("."):
        raise ValueError(
            "is used as a folder name under runs/: use letters, digits, '-', '_' or spaces"
            " (no '/', '\\', leading '.' or '..')"
        )
    if len(v) > 100:
        raise ValueError("must be at most 100 characters (it names the output folder)")
    return v


def _label(v: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters (newlines, tabs, NUL …)")
    if len(v) > 200:
        raise ValueError("must be at most 200 characters")
    return v


Label = Annotated[str, AfterValidator(_label)]
"""A name shown in tables and reports: no control characters, at most 200 characters."""

MAX_MONEY = 1e9
"""Largest budget, value, bid, reserve or rate a scenario may give (sums stay finite)."""

SafeName = Annotated[str, AfterValidator(_safe_name)]
"""A name that is safe as one path component (no ``/``, ``..``, leading ``.``, control chars)."""


# annotation members that make a field numeric-only (bool and str are then refused)
_NUMERIC = (int, float)


def _members(ann: Any) -> list[Any]:
    """Flatten ``Annotated``/``Optional``/``Union`` into the list of member types."""
    origin = typing.get_origin(ann)
    if origin is Annotated:
        return _members(typing.get_args(ann)[0])
    if origin is Union or origin is types.UnionType:
        out: list[Any] = []
        for a in typing.get_args(ann):
            out += _members(a)
        return out
    return [ann]


class _NotStrict(ValueError):
    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _check_strict(value: Any, ann: Any, loc: tuple[Any, ...] = ()) -> None:
    """Refuse booleans and strings where the annotation only accepts numbers (recursing into
    lists and dict values); pydantic's lax mode would read ``true`` as 1 and ``"5"`` as 5."""
    if isinstance(value, str) and "\x00" in value:
        raise _NotStrict(loc, "must not contain a NUL character")
    members = _members(ann)
    if any(m is Any or m is object or m is bool for m in members):
        return
    numeric = [m for m in members if m in _NUMERIC]
    others = [m for m in members if m not in _NUMERIC and m is not type(None)]
    if numeric and not others and isinstance(value, (bool, str)):
        text = "must be an integer" if float not in numeric else "must be a number"
        raise _NotStrict(loc, f"{text}, got {short_repr(value)}")
    if isinstance(value, list):
        for m in others:
            if typing.get_origin(m) in (list, tuple, set) and typing.get_args(m):
                inner = typing.get_args(m)[0]
                for i, x in enumerate(value):
                    _check_strict(x, inner, (*loc, i))
    elif isinstance(value, dict):
        for m in others:
            if typing.get_origin(m) is dict and len(typing.get_args(m)) == 2:
                inner = typing.get_args(m)[1]
                for k, x in value.items():
                    _check_strict(x, inner, (*loc, k))


class StrictModel(BaseModel):
    """Base for every user-facing config: unknown keys are errors, values are validated on set.

    Every float must be finite (``.inf``/``.nan`` are refused), and a field that only takes
    numbers refuses booleans (``temperature: true``) and strings (``n_ads: "10"``).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                if key in data:
                    try:
                        _check_strict(data[key], field.annotation)
                    except _NotStrict as exc:
                        raise FieldError((key, *exc.loc), str(exc)) from None
        return data


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
        return f"must be one of {ctx.get('expected')}, got {short_repr(given)}"
    if etype == "value_error":
        return str(ctx.get("error", err["msg"]))
    template = _MESSAGES.get(etype)
    nice = {k: _num(v) for k, v in ctx.items()}
    msg = template.format(**nice) if template else err["msg"]
    if etype != "missing" and not isinstance(given, (dict, list)):
        msg += f", got {short_repr(given)}"
    return msg


_MAX_MESSAGE_LINES = 20
_MAX_LINE_CHARS = 400


def _cap(line: str) -> str:
    return line if len(line) <= _MAX_LINE_CHARS else line[: _MAX_LINE_CHARS - 20] + " … (cut)"


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
        errors = exc.errors(include_url=False)
        for err in errors[:_MAX_MESSAGE_LINES]:
            loc = _clean_loc(tuple(err["loc"]), data)
            inner = (err.get("ctx") or {}).get("error")
            if isinstance(inner, FieldError):  # a validator naming another field
                loc = loc + inner.loc
            line = _yaml_line(root, loc) if root is not None else None
            where = f"{source}:{line}" if line else source
            lines.append(_cap(f"{where}: {_format_loc(loc)}: {_describe_error(err)}"))
        if len(errors) > _MAX_MESSAGE_LINES:
            lines.append(f"… and {len(errors) - _MAX_MESSAGE_LINES} more problem(s)")
        raise ConfigError("\n".join(lines)) from None


MAX_ALIASES = 100
"""Most aliases (``*name``) a YAML file may use."""
MAX_YAML_NODES = 1_000_000
"""Most values a YAML document may hold once its aliases are expanded (alias bombs fail fast)."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of lists and mappings in a YAML file."""
_DEFAULT_MAX_YAML_BYTES = 1 << 20


def max_yaml_bytes() -> int:
    """Largest YAML file adsim reads: ``$ADSIM_MAX_YAML_BYTES``, default 1 MiB."""
    raw = os.environ.get("ADSIM_MAX_YAML_BYTES")
    if raw is None or raw.strip() == "":
        return _DEFAULT_MAX_YAML_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(
            f"ADSIM_MAX_YAML_BYTES={short_repr(raw)}: must be a positive whole number of bytes"
        )
    return value


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and refuses nesting deeper than :data:`MAX_YAML_DEPTH`
    while composing (PyYAML's composer recurses; deep nesting would hit RecursionError)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None,
                    f"more than {MAX_ALIASES} aliases (*name); write the values out", mark,
                )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.1 (PyYAML) reads `1e-3` as a string; read it as the number everyone means (YAML 1.2)
_LimitedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Duplicate keys (naming both lines), recursive aliases and the expanded size of the
    document (aliases reuse nodes; the sum over the expanded tree is what a reader walks)."""
    size: dict[int, int] = {}
    active: set[int] = set()

    def walk(node: yaml.Node) -> int:
        key = id(node)
        if key in size:
            return size[key]
        if key in active:
            raise ConfigError(
                f"{source}:{node.start_mark.line + 1}: invalid YAML: an alias refers to the"
                " list or mapping that contains it (recursive alias)"
            )
        if isinstance(node, yaml.ScalarNode):
            return 1
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    ident = (k.tag, k.value)
                    line = k.start_mark.line + 1
                    if ident in seen:
                        raise ConfigError(
                            f"{source}:{line}: duplicate key {short_repr(k.value, 60)} (first at"
                            f" line {seen[ident]}); remove one of them"
                        )
                    seen[ident] = line
                total += walk(k) + walk(v)
                if total > MAX_YAML_NODES:
                    break
        else:
            for v in node.value:
                total += walk(v)
                if total > MAX_YAML_NODES:
                    break
        active.discard(key)
        if total > MAX_YAML_NODES:
            raise ConfigError(
                f"{source}:{node.start_mark.line + 1}: invalid YAML: expands to more than"
                f" {MAX_YAML_NODES:,} values through aliases (an alias bomb?); write the"
                " values out"
            )
        size[key] = total
        return total

    walk(root)


def _open_regular(p: Path, limit: int) -> bytes:
    """Read a regular file of at most ``limit`` bytes; refuse FIFOs, devices and folders before
    opening (a FIFO or ``/dev/zero`` would block or read forever)."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found; check the path") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{p}: is a folder; pass a YAML file")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{p}: is not a regular file (a pipe, socket or device); pass a YAML file")
    if st.st_size > limit:
        raise ConfigError(
            f"{p}: is {st.st_size:,} bytes, more than the {limit:,}-byte limit for YAML files;"
            " raise ADSIM_MAX_YAML_BYTES if it really is that large"
        )
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the stat
            raise ConfigError(f"{p}: is not a regular file; pass a YAML file")
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise ConfigError(
            f"{p}: is more than the {limit:,}-byte limit for YAML files; raise"
            " ADSIM_MAX_YAML_BYTES if it really is that large"
        )
    return raw


def read_yaml(path: str | os.PathLike[str]) -> tuple[Any, yaml.Node | None]:
    """Read a YAML file: ``(data, composed node tree)``; every failure is a :class:`ConfigError`.

    The one door through which adsim reads YAML (scenarios, training configs, the build cache).
    Limits: regular files only, ``ADSIM_MAX_YAML_BYTES`` (default 1 MiB), no duplicate keys,
    at most :data:`MAX_ALIASES` aliases and :data:`MAX_YAML_NODES` values after expanding them,
    no recursive aliases, nesting at most :data:`MAX_YAML_DEPTH` deep.
    """
    p = Path(path)
    raw = _open_regular(p, max_yaml_bytes())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: is not UTF-8 text (byte {exc.start}); pass a YAML file"
        ) from None
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text)  # its reader refuses control characters right away
        root = loader.get_single_node()
        if root is not None:
            _check_nodes(root, str(p))
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {_cap(str(problem))}") from None
    except ConfigError:
        raise
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a 5,000-digit integer
        raise ConfigError(f"{p}: invalid YAML: {_cap(str(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()
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
