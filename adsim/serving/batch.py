"""Offline batch scoring: ``adsim predict RUN_DIR --input rows.parquet --output scored.parquet``.

The input is read in chunks of ``chunk_size`` rows (``pyarrow.parquet.ParquetFile.iter_batches``);
each chunk is encoded with the run's saved preprocessor (``Run.predict_frame``: the same code that
encoded the training rows), scored in one forward pass per chunk, calibrated, and appended to a
``ParquetWriter`` on a temporary file that is renamed onto ``--output`` only when every chunk has
been written (a crash leaves no half-written output). Memory is bounded by the chunk size.

Output columns: the kept input columns, then ``pred_<task>`` (calibrated) for every task, and
``pred_<task>_raw`` (uncalibrated) with ``raw=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adsim._io import atomic_path
from adsim.errors import DataError

__all__ = ["predict_parquet"]


def predict_parquet(run_dir: str | Path, input_path: str | Path, output_path: str | Path,
                    chunk_size: int = 65_536, columns: list[str] | None = None, raw: bool = False,
                    progress: bool = True, allow_missing_features: bool = False) -> dict[str, Any]:
    """Score every row of ``input_path`` with the run in ``run_dir``; returns a summary dict.

    Only the model's feature columns are read for scoring (labels and group/truth columns such as
    ``user_id`` are not needed). A feature column absent from the file is an error naming it,
    unless ``allow_missing_features``: then it takes its documented default for every row
    (dense → training mean, sparse → ``__missing__``, sequence → padding). Missing *values*
    (null/NaN) always take those defaults.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from adsim.models.checkpoint import load_run

    src = Path(input_path)
    if not src.exists():
        raise DataError(f"--input {src}: file not found")
    if chunk_size < 1:
        raise DataError(f"--chunk-size must be >= 1, got {chunk_size}")
    try:
        pf = pq.ParquetFile(src)
    except Exception as exc:  # not parquet
        raise DataError(f"--input {src}: not a readable parquet file ({exc})") from None
    run = load_run(run_dir)
    names = pf.schema_arrow.names
    keep = list(names) if columns is None else list(columns)
    for c in keep:
        if c not in names:
            raise DataError(f"--columns: {c!r} is not a column of {src}; columns: {', '.join(names)}")
    absent = run.preprocessor.absent_features(names)
    if absent and not allow_missing_features:
        role, col = absent[0]
        raise DataError(
            f"column {col!r} (data.{role}) is not in the rows to score ({src}; {len(absent)} feature"
            " column(s) absent); add it, or pass --allow-missing-features to score with its default"
        )
    feats = [c for c in run.preprocessor.features if c in names]
    tasks = list(run.schema.tasks)
    clash = [c for c in keep if c.startswith("pred_") and c[5:].removesuffix("_raw") in tasks]
    if clash:
        raise DataError(f"input column {clash[0]!r} would be overwritten by a prediction; drop it with --columns")
    n_rows = pf.metadata.num_rows
    written = 0
    with atomic_path(output_path) as tmp:
        writer = None
        try:
            bar = tqdm(total=n_rows, unit="rows", desc="scoring", disable=not progress)
            for rb in pf.iter_batches(batch_size=chunk_size):
                df = rb.select(feats).to_pandas()  # only the model's features are needed to score
                p = run.predict_frame(df, calibrated=True, batch_size=chunk_size)
                out = {c: rb.column(c) for c in keep}
                for j, t in enumerate(tasks):
                    out[f"pred_{t}"] = pa.array(p[:, j].astype(np.float64))
                if raw:
                    pr = run.predict_frame(df, calibrated=False, batch_size=chunk_size)
                    for j, t in enumerate(tasks):
                        out[f"pred_{t}_raw"] = pa.array(pr[:, j].astype(np.float64))
                table = pa.table(out)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                written += table.num_rows
                bar.update(table.num_rows)
            bar.close()
            if writer is None:  # empty input: still write a valid (empty) file
                empty = {c: pa.array([], type=pf.schema_arrow.field(c).type) for c in keep}
                empty.update({f"pred_{t}": pa.array([], type=pa.float64()) for t in tasks})
                writer = pq.ParquetWriter(tmp, pa.table(empty).schema)
                writer.write_table(pa.table(empty))
        finally:
            if writer is not None:
                writer.close()
    return {"rows": written, "tasks": tasks, "output": str(output_path)}
