"""Scenario configuration: typed schema (pydantic) and YAML loading with clear errors.

A scenario file describes one experiment: the world, the logging policy, the candidate policies
and how to evaluate them. :func:`load_scenario` reads and validates it; every problem becomes one
:class:`~adsim.errors.ConfigError` whose message names the file, the line and the path inside the
file, e.g. ``quickstart.yaml:7: world.n_ads: must be >= 2, got 0``.

:func:`load_config` is the same machinery for any other pydantic config (training, serving).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adsim.errors import ConfigError

__all__ = [
    "StrictModel",
    "SparseFieldConfig",
    "ParametricTruthConfig",
    "WorldConfig",
    "UniformPolicyConfig",
    "EpsilonGreedyPolicyConfig",
    "SoftmaxPolicyConfig",
    "ThompsonPolicyConfig",
    "PolicyConfig",
    "EvaluationConfig",
    "Scenario",
    "load_config",
    "load_scenario",
    "parse_config",
    "scenario_json_schema",
]


class StrictModel(BaseModel):
    """Base for every user-facing config: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------------------- world
class SparseFieldConfig(StrictModel):
    """A categorical user feature."""

    name: str = Field(min_length=1, description="Column name of the field.")
    vocab_size: int = Field(ge=2, le=1_000_000, description="Number of distinct values.")
    zipf: float = Field(
        default=1.0, ge=0.0, le=5.0,
        description="Popularity skew: value of rank r has probability ∝ r^-zipf (0 = uniform).",
    )


class ParametricTruthConfig(StrictModel):
    """Logistic click model: logit p(click | user u, ad k) = b_k + s·(x_u · e_k) + Σ_f t_f[c_uf, k]."""

    type: Literal["parametric"] = "parametric"
    base_ctr: float = Field(default=0.05, gt=0.0, lt=1.0, description="Typical click-through rate.")
    effect_scale: float = Field(
        default=1.0, ge=0.0, le=10.0, description="Strength s of user×ad feature effects on the logit."
    )
    ad_bias_sd: float = Field(
        default=0.5, ge=0.0, le=5.0, description="Standard deviation of the per-ad logit bias b_k."
    )
    sparse_effect_sd: float = Field(
        default=0.3, ge=0.0, le=5.0, description="Standard deviation of the field×value×ad effects t_f."
    )


TruthConfig = Annotated[Union[ParametricTruthConfig], Field(discriminator="type")]


class WorldConfig(StrictModel):
    """The simulated world: a finite user population, a catalogue of ads and a click model."""

    n_users: int = Field(default=5000, ge=10, le=10_000_000, description="Users in the population.")
    n_ads: int = Field(default=10, ge=2, le=100_000, description="Ads (actions) to choose from.")
    n_dense: int = Field(default=5, ge=0, le=1024, description="Dense (Gaussian) user features.")
    sparse_fields: list[SparseFieldConfig] = Field(
        default_factory=lambda: [
            SparseFieldConfig(name="region", vocab_size=8),
            SparseFieldConfig(name="device", vocab_size=3, zipf=0.5),
        ],
        description="Categorical user features.",
    )
    reward: Literal["click", "value"] = Field(
        default="click", description="Reward of an impression: the click (0/1) or value_k × click."
    )
    value_sigma: float = Field(
        default=0.5, ge=0.0, le=5.0,
        description="Ad values per click are log-normal(0, value_sigma) (used when reward = value).",
    )
    truth: TruthConfig = Field(default_factory=ParametricTruthConfig)

    @field_validator("sparse_fields")
    @classmethod
    def _unique_field_names(cls, v: list[SparseFieldConfig]) -> list[SparseFieldConfig]:
        names = [f.name for f in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate field name {dup[0]!r}; each field needs its own name")
        return v


# ------------------------------------------------------------------------------------ policies
ModelChoice = Literal["fitted", "noisy_truth", "truth"]


class _PolicyBase(StrictModel):
    name: str | None = Field(default=None, min_length=1, description="Label on the leaderboard.")


class _ScoredPolicyBase(_PolicyBase):
    model: ModelChoice = Field(
        default="fitted",
        description=(
            "CTR estimates the policy acts on: 'fitted' (logistic regression on the training log),"
            " 'noisy_truth' (the true model with parameter noise model_noise) or 'truth'."
        ),
    )
    model_noise: float = Field(
        default=0.5, ge=0.0, le=10.0, description="Parameter noise for model = noisy_truth."
    )


class UniformPolicyConfig(_PolicyBase):
    """Every ad with probability 1/K."""

    type: Literal["uniform"]


class EpsilonGreedyPolicyConfig(_ScoredPolicyBase):
    """Best estimated ad with probability 1-ε, otherwise uniform."""

    type: Literal["epsilon_greedy"]
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0, description="Exploration probability ε.")


class SoftmaxPolicyConfig(_ScoredPolicyBase):
    """π(a|x) ∝ exp(score(x, a) / temperature), score = estimated logit."""

    type: Literal["softmax"]
    temperature: float = Field(default=0.5, gt=0.0, le=1e6, description="Softmax temperature.")


class ThompsonPolicyConfig(_PolicyBase):
    """Logistic Thompson sampling with a Laplace posterior fitted on the training log."""

    type: Literal["thompson"]
    prior_precision: float = Field(default=1.0, gt=0.0, description="Gaussian prior precision λ.")
    n_samples: int = Field(
        default=200, ge=10, le=100_000,
        description="Posterior draws used to compute the action distribution.",
    )


PolicyConfig = Annotated[
    Union[
        UniformPolicyConfig, EpsilonGreedyPolicyConfig, SoftmaxPolicyConfig, ThompsonPolicyConfig
    ],
    Field(discriminator="type"),
]


# ---------------------------------------------------------------------------------- evaluation
EstimatorName = Literal["dm", "ips", "snips", "dr"]


class EvaluationConfig(StrictModel):
    """How candidates are evaluated offline (estimators on the log) and exactly (the oracle)."""

    n_rounds: int = Field(
        default=20_000, ge=100, le=100_000_000, description="Logged rounds used for estimation."
    )
    n_train_rounds: int = Field(
        default=20_000, ge=100, le=100_000_000,
        description="Separate logged rounds on which 'fitted' models and Thompson sampling learn.",
    )
    estimators: list[EstimatorName] = Field(
        default_factory=lambda: ["ips", "snips", "dr"], min_length=1,
        description="Off-policy estimators to run.",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Interval coverage.")
    n_online_rounds: int = Field(
        default=0, ge=0, le=100_000_000,
        description="If > 0, also simulate each candidate on-policy for this many rounds.",
    )


class Scenario(StrictModel):
    """One experiment: ``adsim run scenario.yaml``."""

    name: str = Field(min_length=1, description="Scenario name (used in reports).")
    description: str = Field(default="", description="Free text shown in the report.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Master seed of every random draw.")
    world: WorldConfig = Field(default_factory=WorldConfig)
    logging_policy: PolicyConfig = Field(
        default_factory=lambda: SoftmaxPolicyConfig(
            type="softmax", temperature=0.5, model="noisy_truth"
        ),
        description="The policy that produced the log (its propensities are recorded).",
    )
    candidates: list[PolicyConfig] = Field(min_length=1, description="Policies to evaluate.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @field_validator("logging_policy")
    @classmethod
    def _logger_needs_no_training(cls, v: Any) -> Any:
        if isinstance(v, ThompsonPolicyConfig):
            raise ValueError(
                "type 'thompson' learns from a training log, which the logging policy does not"
                " have; use softmax, epsilon_greedy or uniform"
            )
        if getattr(v, "model", None) == "fitted":
            raise ValueError(
                "model 'fitted' learns from a training log, which the logging policy does not"
                " have; use model: noisy_truth or truth"
            )
        return v

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, v: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for i, c in enumerate(v):
            label = c.name or c.type
            if label in seen:
                raise ValueError(
                    f"candidate {i} has the same name {label!r} as an earlier one; give it a"
                    " distinct 'name'"
                )
            seen.add(label)
        return v


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


def load_config(path: str | os.PathLike[str], model: type[M]) -> M:
    """Read a YAML file and validate it against ``model``; every failure is a ConfigError."""
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
    return parse_config(data, model, source=str(p), root=root)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario YAML file."""
    return load_config(path, Scenario)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files (for editors: ``adsim schema > scenario.schema.json``)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "adsim scenario"
    return schema
