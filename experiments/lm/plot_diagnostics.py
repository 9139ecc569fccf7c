"""Draw what Muon did to each matrix during a run: update RMS, msign's max|sigma - 1|, the
skipped fraction and (with QK-clip) the largest attention logit, against the step.

    python -m experiments.lm.plot_diagnostics RUN_DIR [--out RUN_DIR/diagnostics.png]

Reads RUN_DIR/metrics.jsonl as ``python -m experiments.lm.train_lm`` writes it (records with
a ``diagnostics`` entry, see :mod:`msign.optim.diagnostics`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (("update_rms/", "update RMS (before lr)", "linear"),
          ("orth_error/", "max |σ − 1| of msign(M)", "log"),
          ("skipped_fraction", "fraction of steps skipped", "linear"),
          ("qk/max_logit", "largest attention logit", "linear"))


def read(run: Path) -> list[dict]:
    """The run's records that carry diagnostics; a clear error where there are none."""
    path = run / "metrics.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} does not exist: give a run directory of experiments.lm."
                         "train_lm")
    recs = [r for r in map(json.loads, path.read_text().splitlines()) if "diagnostics" in r]
    if not recs:
        raise SystemExit(f"{path} has no diagnostics: they are written for Muon runs every "
                         "--diagnostics-every steps")
    return recs


def plot(recs: list[dict], out: Path) -> Path:
    keys = sorted({k for r in recs for k in r["diagnostics"]})
    panels = [p for p in PANELS if any(k.startswith(p[0]) for k in keys)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
    for ax, (prefix, label, scale) in zip(axes[0], panels, strict=True):
        for k in (k for k in keys if k.startswith(prefix)):
            pts = [(r["step"], r["diagnostics"][k]) for r in recs if k in r["diagnostics"]]
            ax.plot(*zip(*pts, strict=True), lw=0.8,
                    label=k.removeprefix(prefix) or None)
        ax.set_yscale(scale)
        ax.set_xlabel("step")
        ax.set_title(label)
    if any(len([k for k in keys if k.startswith(p[0])]) > 1 for p in panels):
        axes[0][0].legend(fontsize=5, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    out = plot(read(args.run), args.out or args.run / "diagnostics.png")
    print(out)
    return out


if __name__ == "__main__":
    main()
