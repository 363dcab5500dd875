"""``adsim train-rl``: train a scenario's RL bidder by hand (``adsim run`` trains it by itself).

The agent is the scenario's ``type: rl`` bidding candidate (``--candidate NAME``, default the
first); a scenario without one uses its older ``bidding.rl`` section. The files can then be named
in a candidate as ``model: path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from adsim.errors import AdsimError, ConfigError

__all__ = ["train_rl_command", "rl_candidate"]


def rl_candidate(scn: Any, name: str | None = None) -> Any:
    """The scenario's bidding RL candidate called ``name`` (default: the first one); a scenario
    without RL candidates gets one from its ``bidding.rl`` section."""
    from adsim.config import RLPolicyConfig

    if scn.auction is None or scn.bidding is None:
        raise ConfigError(
            "train-rl trains a bidding agent and needs 'auction' and 'bidding' sections; RL"
            " candidates of a bandit scenario are trained by `adsim run`"
        )
    rls = [c for c in scn.bidding.candidates if c.type == "rl"]
    if name is not None:
        found = [c for c in rls if (c.name or c.type) == name]
        if not found:
            names = [c.name or c.type for c in rls] or ["(none)"]
            raise ConfigError(f"--candidate {name!r}: no RL candidate of that name; the scenario"
                              f" has {', '.join(names)}")
        return found[0]
    if rls:
        return rls[0]
    old = scn.bidding.rl
    return RLPolicyConfig(
        type="rl", name=f"rl-{old.algo}", algo=old.algo, steps=old.total_timesteps,
        action_type=old.action_type, max_scale=old.max_scale, max_dual=old.max_dual,
        n_bins=old.n_bins, reward=old.reward,
        hyperparameters={"learning_rate": old.learning_rate},
    )


@click.command("train-rl")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--candidate", default=None,
              help="Name of the scenario's RL candidate to train (default: the first).")
@click.option("--algo", default=None,
              help="SB3 algorithm: ppo, a2c, sac, td3, ddpg or dqn (default: the candidate's).")
@click.option("--steps", "total_timesteps", type=int, default=None,
              help="Environment steps to train for (default: the candidate's steps).")
@click.option("--seed", type=int, default=None, help="Training seed (default: the scenario seed).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model path, .pt (default: models/<scenario>_<candidate>.pt); a .json"
                   " description and a .training.csv curve go beside it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_rl_command(
    scenario: Path, candidate: str | None, algo: str | None, total_timesteps: int | None,
    seed: int | None, out: Path | None, quiet: bool,
) -> None:
    """Train an RL bidder of SCENARIO on adsim/BudgetBidding-v0 and save it."""
    from pydantic import ValidationError

    from adsim.config import RLPolicyConfig, load_scenario
    from adsim.experiments.rl_train import train_bidding_candidate

    if total_timesteps is not None and total_timesteps < 1:
        raise AdsimError(f"--steps must be >= 1, got {total_timesteps}")
    if seed is not None and seed < 0:
        raise AdsimError(f"--seed must be >= 0, got {seed}")
    scn = load_scenario(scenario)
    cfg = rl_candidate(scn, candidate)
    update: dict[str, Any] = {}
    if algo is not None:
        update["algo"] = algo
    if total_timesteps is not None:
        update["steps"] = total_timesteps
    try:
        cfg = RLPolicyConfig.model_validate({**cfg.model_dump(), **update})
    except ValidationError as exc:
        raise ConfigError(f"--algo: {exc.errors()[0]['msg']}") from None
    if out is None:
        bidding = scn.bidding
        assert bidding is not None  # rl_candidate checked it
        legacy = not any(c.type == "rl" for c in bidding.candidates)
        out = Path(bidding.rl.out) if legacy else Path("models") / f"{scn.name}_{cfg.name or cfg.type}.pt"
    if out.suffix != ".pt":
        out = out.with_suffix(".pt")
    res = train_bidding_candidate(scn, cfg, out.parent, seed=seed, progress=not quiet, stem=out.stem)
    score = res.curve["eval_score"].iloc[-1] if len(res.curve) else float("nan")
    click.echo(f"trained {cfg.algo.upper()} for {cfg.steps} steps in {res.seconds:.1f} s"
               f" (held-out days: {score:.1f}% of OPT); wrote {res.path},"
               f" {res.path.with_suffix('.json')} and {res.path.with_suffix('.training.csv')}")
