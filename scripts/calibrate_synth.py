"""Compare tumour/tissue contrast of synthetic cases with the real BraTS sample.

For every case, the mean intensity of each tumour label (NCR, ED, ET) and of CSF-like voxels
is divided by the mean of normal-appearing brain (nonzero voxels labelled 0), per modality
(see :func:`brats_utils.data.synth.label_intensity_ratios` and
:func:`brats_utils.data.synth.csf_intensity_ratios`). The script averages these ratios over the
real cases and over N synthetic cases and prints a markdown table with the relative
difference. It exits with status 1 if a tumour label differs by more than the tolerance.

Usage (from the repository root)::

    .venv/bin/python scripts/calibrate_synth.py --cases 8 --seed 0
    .venv/bin/python scripts/calibrate_synth.py --real-only   # the targets in synth.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from brats_utils.conventions import CLASS_NAMES, MODALITIES, MODALITY_NAMES, VOLUME_SHAPE
from brats_utils.data.cases import discover_cases, load_case
from brats_utils.data.synth import (
    RATIO_LABELS,
    REAL_LABEL_RATIOS,
    csf_intensity_ratios,
    generate_case,
    label_intensity_ratios,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL_DIR = REPO_ROOT.parent / "shared" / "data" / "brats2018_sample"
#: Column names of the ratio arrays: the tumour labels, then CSF-like voxels.
COLUMNS: tuple[str, ...] = (*(CLASS_NAMES[c] for c in RATIO_LABELS), "CSF-like")
TOLERANCE = 0.25


def case_volumes(image: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(5,) voxel counts (1 mm^3 at full size): brain, WT, TC, ET, and cases-with-NCR flag."""
    brain = int((image != 0).any(axis=-1).sum())
    counts = np.bincount(classes.ravel(), minlength=4)
    whole, core = counts[1:].sum(), counts[1] + counts[3]
    return np.array([brain, whole, core, counts[3], counts[1] > 0], dtype=np.float64)


def case_ratios(image: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(4, 4) ratios: rows MODALITIES; columns NCR, ED, ET, CSF-like (NaN when absent)."""
    return np.concatenate(
        [label_intensity_ratios(image, classes), csf_intensity_ratios(image, classes)[:, None]],
        axis=1,
    )


def real_ratios(real_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Ratios (n_cases, 4, 4) and volumes (n_cases, 5) of every labelled case in ``real_dir``."""
    cases = discover_cases(real_dir)
    if not cases:
        raise SystemExit(f"no cases found under {real_dir}")
    ratios, volumes = [], []
    for files in tqdm(cases, desc="real", unit="case"):
        case = load_case(files, require_seg=True)
        ratios.append(case_ratios(case.image, case.seg))
        volumes.append(case_volumes(case.image, case.seg))
    return np.stack(ratios), np.stack(volumes)


def synthetic_ratios(
    n_cases: int, seed: int, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Ratios (n_cases, 4, 4) and volumes (n_cases, 5) of synthetic cases 0..n_cases-1."""
    ratios, volumes = [], []
    for index in tqdm(range(n_cases), desc="synthetic", unit="case"):
        case = generate_case(seed, index, shape)
        ratios.append(case_ratios(case.image.astype(np.float32), case.classes))
        volumes.append(case_volumes(case.image, case.classes))
    return np.stack(ratios), np.stack(volumes)


def volume_table(real: np.ndarray, synthetic: np.ndarray) -> str:
    """Markdown table of brain and tumour volumes (voxels), real vs synthetic."""
    lines = [
        "| quantity | real mean (min-max) | synthetic mean (min-max) |",
        "| --- | --- | --- |",
    ]
    names = ("brain voxels", "WT voxels", "TC voxels", "ET voxels")
    for column, name in enumerate(names):
        r, s = real[:, column], synthetic[:, column]
        lines.append(
            f"| {name} | {r.mean():,.0f} ({r.min():,.0f}-{r.max():,.0f}) | "
            f"{s.mean():,.0f} ({s.min():,.0f}-{s.max():,.0f}) |"
        )
    lines.append(f"| cases with NCR | {real[:, 4].mean():.0%} | {synthetic[:, 4].mean():.0%} |")
    lines.append(
        f"| cases with ET | {(real[:, 3] > 0).mean():.0%} | {(synthetic[:, 3] > 0).mean():.0%} |"
    )
    return "\n".join(lines)


def markdown_table(real: np.ndarray, synthetic: np.ndarray) -> str:
    """Markdown table of mean (sd) ratios, real vs synthetic, and their relative difference."""
    lines = [
        "| modality | region | real mean (sd) | synthetic mean (sd) | rel. diff | within 25% |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row, modality in enumerate(MODALITIES):
        for column, name in enumerate(COLUMNS):
            r, s = real[:, row, column], synthetic[:, row, column]
            r_mean, s_mean = np.nanmean(r), np.nanmean(s)
            diff = s_mean / r_mean - 1.0
            ok = "yes" if abs(diff) <= TOLERANCE else "**no**"
            lines.append(
                f"| {MODALITY_NAMES[modality]} | {name} | {r_mean:.3f} ({np.nanstd(r):.3f}) | "
                f"{s_mean:.3f} ({np.nanstd(s):.3f}) | {diff:+.1%} | {ok} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; returns 1 if a tumour label is off by more than the tolerance."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-dir", type=Path, default=DEFAULT_REAL_DIR)
    parser.add_argument("--cases", type=int, default=8, help="synthetic cases (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shape", type=int, nargs=3, default=VOLUME_SHAPE, help="synthetic volume shape"
    )
    parser.add_argument(
        "--real-only", action="store_true", help="only print the real ratios (synth.py targets)"
    )
    args = parser.parse_args(argv)
    if not args.real_dir.is_dir():
        raise SystemExit(f"real sample folder not found: {args.real_dir}")

    real, real_volumes = real_ratios(args.real_dir)
    print(f"\nReal cases: {len(real)} from {args.real_dir}")
    if args.real_only:
        print("REAL_LABEL_RATIOS = {")
        for row, modality in enumerate(MODALITIES):
            means = ", ".join(
                f"{np.nanmean(real[:, row, c]):.3f}" for c in range(len(RATIO_LABELS))
            )
            print(f'    "{modality}": ({means}),')
        print("}")
        print(f"CSF-like: {np.round(np.nanmean(real[:, :, -1], axis=0), 3).tolist()}")
        return 0

    synthetic, synthetic_volumes = synthetic_ratios(args.cases, args.seed, tuple(args.shape))
    print(f"Synthetic cases: {args.cases}, seed {args.seed}, shape {tuple(args.shape)}\n")
    print(markdown_table(real, synthetic))
    print()
    print(volume_table(real_volumes, synthetic_volumes))
    stored = np.array([REAL_LABEL_RATIOS[m] for m in MODALITIES])
    measured = np.nanmean(real[:, :, : len(RATIO_LABELS)], axis=0)
    if not np.allclose(stored, measured, atol=0.002):
        print("\nnote: REAL_LABEL_RATIOS in synth.py differ from these real measurements")
    labels_diff = np.abs(np.nanmean(synthetic[:, :, : len(RATIO_LABELS)], axis=0) / measured - 1.0)
    return 1 if (labels_diff > TOLERANCE).any() else 0


if __name__ == "__main__":
    sys.exit(main())
