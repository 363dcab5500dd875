"""Render docs/architecture.png: the same graph as the Mermaid diagram in docs/architecture.md.

No Mermaid renderer works offline here (mermaid-cli needs a headless Chromium), so the PNG is
drawn with matplotlib boxes and arrows. Run: ``python docs/render_architecture.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent / "architecture.png"

# name: (x, y, label, colour)
W, H = 2.1, 0.95
BOXES = {
    # training pipeline → registry → serving
    "cfg": (0.2, 6.2, "run config YAML\n(adsim train)", "#e8eef9"),
    "prep": (2.7, 6.2, "prepare-data\nreaders · Preprocessor\n(JSON vocab/scalers)", "#e8eef9"),
    "train": (5.2, 6.2, "Trainer\nDeepFM · AdamW · AMP\nSWA · early stop · resume", "#e8eef9"),
    "cal": (7.7, 6.2, "calibration\nisotonic / Platt / T", "#e8eef9"),
    "runf": (10.2, 6.2, "run folder\ncheckpoint.pt · preprocessors.json\ncalibrator.json", "#fff2cc"),
    "export": (10.2, 4.6, "export\nONNX (≤1e-5) · INT8\ndistillation", "#fff2cc"),
    "reg": (12.7, 6.2, "model registry\nversions · A/B weights\ncold-start default", "#d9ead3"),
    "api": (15.2, 6.2, "FastAPI service\n/v1/predict · /batch\n/v1/feature-spec", "#d9ead3"),
    "client": (17.7, 6.2, "clients\n(bidder, ad server)", "#f4f4f4"),
    "prom": (15.2, 4.6, "/metrics\nPrometheus", "#d9ead3"),
    "batch": (7.7, 4.6, "adsim predict\nparquet → parquet\n(streaming)", "#d9ead3"),
    # simulator → logs → estimators → leaderboard
    "scn": (0.2, 2.2, "scenario YAML\n(adsim run)", "#fce5cd"),
    "world": (2.7, 2.2, "World\npopulation · catalog\ntruth · auction", "#fce5cd"),
    "pi0": (5.2, 2.2, "logging policy π0\n(bandits, bidders)", "#fce5cd"),
    "log": (7.7, 2.2, "logs\ncontext · action · reward\npscore · position", "#fce5cd"),
    "est": (10.2, 2.2, "estimators\nIPS · SNIPS · DM · DR …", "#fce5cd"),
    "oracle": (10.2, 0.5, "oracle\nexact V(π) · hindsight", "#fce5cd"),
    "lb": (12.7, 2.2, "leaderboard\nCSV · PNG · report", "#fce5cd"),
    "cands": (5.2, 0.5, "candidate policies\nπ1 … πk", "#fce5cd"),
}
EDGES = [
    ("cfg", "prep"), ("prep", "train"), ("train", "cal"), ("cal", "runf"), ("runf", "reg"),
    ("runf", "export"), ("export", "reg"), ("reg", "api"), ("api", "client"), ("api", "prom"),
    ("runf", "batch"),
    ("scn", "world"), ("world", "pi0"), ("pi0", "log"), ("log", "est"), ("est", "lb"),
    ("cands", "oracle"), ("oracle", "lb"), ("cands", "est"), ("world", "oracle"),
]
DASHED = [("runf", "world", "TrainedTruth\n(world model)"), ("log", "prep", "train on logs")]


def _anchor(a: str, b: str) -> tuple[tuple[float, float], tuple[float, float]]:
    xa, ya = BOXES[a][:2]
    xb, yb = BOXES[b][:2]
    ca, cb = (xa + W / 2, ya + H / 2), (xb + W / 2, yb + H / 2)
    dx, dy = cb[0] - ca[0], cb[1] - ca[1]
    if abs(dx) * H >= abs(dy) * W:  # leave through a vertical side
        sa = (xa + (W if dx > 0 else 0), ca[1])
        sb = (xb + (0 if dx > 0 else W), cb[1])
    else:
        sa = (ca[0], ya + (H if dy > 0 else 0))
        sb = (cb[0], yb + (0 if dy > 0 else H))
    return sa, sb


def main() -> None:
    fig, ax = plt.subplots(figsize=(20, 8))
    ax.set_xlim(-0.2, 20.1)
    ax.set_ylim(-0.1, 7.9)
    ax.axis("off")
    ax.text(0.2, 7.55, "CTR/CVR training pipeline → model registry → serving", fontsize=14, weight="bold")
    ax.text(0.2, 3.55, "simulator → logs → estimators → leaderboard", fontsize=14, weight="bold")
    for x, y, label, colour in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), W, H, boxstyle="round,pad=0.04", fc=colour, ec="#444", lw=1.2))
        ax.text(x + W / 2, y + H / 2, label, ha="center", va="center", fontsize=8.6)
    for a, b in EDGES:
        s, e = _anchor(a, b)
        ax.add_patch(FancyArrowPatch(s, e, arrowstyle="-|>", mutation_scale=14, lw=1.3, color="#333"))
    for a, b, label in DASHED:
        s, e = _anchor(a, b)
        ax.add_patch(FancyArrowPatch(s, e, arrowstyle="-|>", mutation_scale=14, lw=1.2, color="#8a5a00",
                                     ls="--", connectionstyle="arc3,rad=0.15"))
        ax.text(s[0] + 0.3 * (e[0] - s[0]) + 0.1, s[1] + 0.3 * (e[1] - s[1]), label, fontsize=8, color="#8a5a00")
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
