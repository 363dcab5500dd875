"""The users of a world model: the feature distribution of a run's prepared training rows.

:func:`save_feature_distribution` fits :class:`adsim.env.feature_dist.FeatureDistribution` on the
run's encoded training rows (``data.processed_dir``) and saves it in the run folder
(``world_features.{json,parquet}``, data only), after which the run folder is self-contained as a
world model; :func:`load_feature_distribution` reads it back (or fits it now).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adsim.env.feature_dist import FeatureDistribution
from adsim.errors import DataError

__all__ = ["save_feature_distribution", "load_feature_distribution", "fit_distribution"]


def _run_processed_dir(run_dir: Path) -> Path:
    from adsim.config.base import load_yaml_mapping

    cfg_path = run_dir / "config.yaml"
    if not cfg_path.exists():
        raise DataError(f"{run_dir}: not a run folder (no config.yaml); train one with `adsim train CONFIG`")
    return Path(load_yaml_mapping(cfg_path)["data"]["processed_dir"])


def save_feature_distribution(
    run_dir: str | Path, processed_dir: str | Path | None = None, max_rows: int = 200_000,
    seed: int = 0,
) -> FeatureDistribution:
    """Fit the feature distribution of a run's prepared training rows and save it in the run folder.

    ``processed_dir`` defaults to the run config's ``data.processed_dir``. After this the run
    folder is self-contained as a world model (the prepared data may be deleted).
    """
    dist = fit_distribution(Path(run_dir), processed_dir, max_rows, seed)
    dist.save(run_dir)
    return dist


def fit_distribution(run_dir: Path, processed_dir: str | Path | None, max_rows: int,
                     seed: int) -> FeatureDistribution:
    """Fit (not save) the distribution of the prepared training rows in ``processed_dir``
    (default: the run config's ``data.processed_dir``), keeping at most ``max_rows`` rows."""
    from adsim.models.data import load_preprocessor

    pdir = Path(processed_dir) if processed_dir is not None else _run_processed_dir(run_dir)
    f = pdir / "train_data.parquet"
    if not f.exists():
        raise DataError(
            f"{f} not found: the world model needs the run's prepared training rows (or a"
            " world_features.json saved with save_feature_distribution)"
        )
    pre, _ = load_preprocessor(pdir)
    schema = pre.schema()
    seq_cols = [f"{s.name}:{i}" for s in schema.sequences for i in range(s.max_len)]
    return FeatureDistribution.fit(
        pd.read_parquet(f), list(schema.dense), [s.name for s in schema.sparse],
        [s.vocab_size for s in schema.sparse], seq_cols, max_rows, seed,
    )


def load_feature_distribution(run_dir: str | Path, processed_dir: str | Path | None = None) -> FeatureDistribution:
    """The run folder's saved distribution, else one fitted now on its prepared training rows."""
    d = Path(run_dir)
    if processed_dir is None and (d / "world_features.json").exists():
        return FeatureDistribution.load(d)
    return fit_distribution(d, processed_dir, 200_000, 0)

