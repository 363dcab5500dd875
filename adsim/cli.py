"""The ``adsim`` command line.

Every command raises :class:`adsim.errors.AdsimError` for bad input; :func:`main` prints its message
on one line of stderr (``error: …``) and exits with status 2 — never a traceback. Heavy libraries
are imported inside commands so that ``adsim --help`` stays fast.

Commands living in other rooms (``ope``, ``train``, …) are click commands defined next to their
code and registered in :func:`_register` by import path.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import click

from adsim import __version__
from adsim.errors import AdsimError

__all__ = ["cli", "main"]


class _LazyGroup(click.Group):
    """A group whose commands from other modules are imported only when used."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, cmd_name)


def _register() -> dict[str, str]:
    """Commands defined in other modules: ``name -> "module:attribute"`` (one line each)."""
    return {
        "ope": "adsim.estimators.cli:ope_command",
        "ope-validate": "adsim.estimators.cli:ope_validate_command",
        "ope-bids": "adsim.experiments.bid_ope_cli:ope_bids_command",
        "prepare-data": "adsim.models.cli:prepare_data_command",
        "train": "adsim.models.cli:train_command",
        "calibrate": "adsim.models.cli:calibrate_command",
        "serve": "adsim.serving.cli:serve_command",
        "predict": "adsim.serving.cli:predict_command",
        "export": "adsim.serving.cli:export_command",
        "world-loop": "adsim.experiments.world_loop:world_loop_command",
        "compare": "adsim.models.compare:compare_command",
        "train-rl": "adsim.policies.cli:train_rl_command",
    }


@click.group(cls=_LazyGroup, lazy=_register(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adsim")
def cli() -> None:
    """adsim — ad-auction simulator, policy gym and off-policy evaluation."""


def _check_seed(value: int | None) -> int | None:
    """``--seed`` must fit numpy's seeding and the scenario schema: 0 … 2^63 − 1."""
    if value is not None and not 0 <= value <= 2**63 - 1:
        raise click.BadParameter(
            f"--seed must be >= 0 and <= 2^63 - 1 ({2**63 - 1}), got {value}", param_hint="'--seed'"
        )
    return value


def _file_kind(path: Path) -> str:
    """What a YAML under ``scenarios/`` describes: ``"validation"`` (an ``adsim ope-validate``
    config: ``targets`` and ``sample_sizes``, no ``candidates``), ``"bid_validation"`` (a scenario
    with a ``bid_ope`` section) or ``"scenario"``. Read through the one YAML door (clear errors)."""
    from adsim.config.base import load_yaml_mapping

    data = load_yaml_mapping(path)
    if "targets" in data and "sample_sizes" in data and "candidates" not in data:
        return "validation"
    if "data" in data and "model" in data:
        return "train"
    if "data" in data and "models" in data:
        return "compare"
    if "models" in data and "scenario" not in data:
        return "serve"
    if "scenario" in data and "world" not in data:
        return "world_loop"
    return "bid_validation" if data.get("bid_ope") is not None else "scenario"


#: how `adsim validate` checks a config that is not a scenario: (loader, what it is, its command)
_CONFIG_KINDS = {
    "train": ("adsim.models.config:load_run_config", "training config", "adsim train"),
    "compare": ("adsim.models.compare:load_compare_config", "model comparison", "adsim compare"),
    "serve": ("adsim.serving.config:load_serve_config", "serving config", "adsim serve --config"),
    "world_loop": ("adsim.experiments.world_loop:load_world_loop_config", "world-loop config",
                   "adsim world-loop"),
}


@cli.command("run")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: runs/<scenario name>).")
@click.option("--seed", type=int, default=None, callback=lambda c, p, v: _check_seed(v),
              help="Override the scenario's seed (0 … 2^63 - 1).")
@click.option("--quiet", is_flag=True, help="No progress bars or table.")
@click.option("--no-train", "no_train", is_flag=True,
              help="Never train: stop with an error if something the scenario needs (a trained"
              " world, an RL agent) is not in the build cache.")
def run_command(
    scenario: Path, out_dir: Path | None, seed: int | None, quiet: bool, no_train: bool
) -> None:
    """Run SCENARIO (YAML): log traffic, evaluate candidates offline and exactly, write results."""
    from adsim._io import check_output_dir
    from adsim.config import load_scenario

    if out_dir is not None and str(out_dir).startswith("-"):  # `--out --quiet` took the flag
        raise AdsimError(f"--out needs a folder, got the option-like {str(out_dir)!r}")

    kind = _file_kind(scenario)
    if kind in _CONFIG_KINDS:
        raise AdsimError(f"{scenario}: a {_CONFIG_KINDS[kind][1]}, not a scenario; run it with"
                         f" `{_CONFIG_KINDS[kind][2]} {scenario}`")
    if kind != "scenario":  # an estimator validation: `adsim ope-validate FILE` with its defaults
        if seed is not None:
            raise AdsimError(f"--seed: {scenario} is an estimator validation, which runs its own"
                             " seeds; set seed / n_seeds in the file, or use `adsim ope-validate --seeds`")
        from adsim.estimators.cli import ope_validate_command

        assert ope_validate_command.callback is not None
        ope_validate_command.callback(scenario, None, out_dir, 1, None, None, None, None, None, quiet)
        return

    scn = load_scenario(scenario)
    if seed is not None:
        scn = scn.model_copy(update={"seed": seed})
    out = out_dir if out_dir is not None else Path("runs") / scn.name  # name: one safe component
    check_output_dir(out, "--out", kind="scenario")  # before any work

    from adsim.experiments.runner import run_scenario

    result = run_scenario(scn, out, progress=not quiet, no_train=no_train)
    if not quiet:
        click.echo(result.table())
        for pol in result.results.get("policies", []):  # type: ignore[union-attr]
            for problem in pol.get("problems") or []:
                click.echo(f"warning: {pol['name']}: {problem}", err=True)
        names = (p.relative_to(out).as_posix() if p.is_relative_to(out) else p.name
                 for p in result.files)
        click.echo(f"\nwrote {', '.join(sorted(names))} to {out}/")


@cli.command("validate")
@click.argument("scenario", type=click.Path(path_type=Path))
def validate_command(scenario: Path) -> None:
    """Check a scenario (or estimator-validation) file without running it."""
    from adsim.config import load_scenario

    kind = _file_kind(scenario)
    if kind in _CONFIG_KINDS:
        import importlib

        target, what, command = _CONFIG_KINDS[kind]
        module, name = target.split(":")
        getattr(importlib.import_module(module), name)(scenario)
        click.echo(f"{scenario}: ok ({what}; run it with `{command}`)")
        return
    if kind == "validation":
        from adsim.experiments.ope_validation import load_validation

        cfg = load_validation(scenario)
        click.echo(f"{scenario}: ok (estimator validation {cfg.name!r}, {len(cfg.targets)} targets,"
                   f" {len(cfg.estimators)} estimators; run it with `adsim run` or `adsim ope-validate`)")
        return
    scn = load_scenario(scenario)
    if scn.bid_ope is not None:
        what = "bid-OPE validation (auction log, target bid rules)"
    elif scn.bidding is not None:
        what = f"{len(scn.bidding.candidates)} bidding candidates"
    elif scn.auction is not None and not scn.candidates:
        what = f"auction day, {len(scn.auction.campaigns)} campaigns"
    else:
        what = f"{len(scn.candidates)} candidates"
    click.echo(f"{scenario}: ok (scenario {scn.name!r}, {what})")


@cli.command("schema")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of stdout.")
def schema_command(out: Path | None) -> None:
    """Print the JSON Schema of scenario files (for editor validation)."""
    from adsim._io import check_output_file, write_text
    from adsim.config import scenario_json_schema

    if out is not None:
        check_output_file(out, "--out")
    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        try:
            write_text(out, text)
        except OSError as exc:
            raise AdsimError(f"--out {out}: cannot write it ({exc.strerror}); choose another path") from None


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI; user errors → one line on stderr and exit code 2."""
    try:
        cli.main(args=argv, prog_name="adsim", standalone_mode=False)
    except AdsimError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except MemoryError:  # the memory estimates should have refused this first
        click.echo(
            "error: out of memory; lower the sizes in the input (or ADSIM_MAX_MEMORY_GB, the"
            " ceiling the estimates are checked against)", err=True,
        )
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
