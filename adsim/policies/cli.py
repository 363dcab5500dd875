"""``adsim train-rl``: train a stable-baselines3 bidder on a scenario's BudgetBidding env."""

from __future__ import annotations

from pathlib import Path

import click

from adsim.errors import AdsimError

__all__ = ["train_rl_command"]


@click.command("train-rl")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--algo", type=click.Choice(["ppo", "sac", "dqn"]), default=None,
              help="Algorithm (default: the scenario's bidding.rl.algo).")
@click.option("--steps", "total_timesteps", type=int, default=None,
              help="Environment steps to train for (default: bidding.rl.total_timesteps).")
@click.option("--seed", type=int, default=None, help="Training seed (default: the scenario seed).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model path, .pt (default: bidding.rl.out); a .json description goes beside it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_rl_command(
    scenario: Path, algo: str | None, total_timesteps: int | None, seed: int | None,
    out: Path | None, quiet: bool,
) -> None:
    """Train an RL bidder on SCENARIO's auction (adsim/BudgetBidding-v0) and save it."""
    from adsim.config import load_scenario
    from adsim.policies.rl import train_rl

    if total_timesteps is not None and total_timesteps < 1:
        raise AdsimError(f"--steps must be >= 1, got {total_timesteps}")
    if seed is not None and seed < 0:
        raise AdsimError(f"--seed must be >= 0, got {seed}")
    scn = load_scenario(scenario)
    res = train_rl(scn, algo=algo, total_timesteps=total_timesteps, seed=seed, out=out,
                   progress=not quiet)
    click.echo(f"trained in {res.seconds:.1f} s; wrote {res.path} and {res.path.with_suffix('.json')}")
