"""Seconds per case of HD95 (WT, TC, ET) and of the whole ``evaluate_case`` on real cases.

The "prediction" is the reference segmentation shifted by 3 voxels along x and 2 along z, so
both masks are realistic tumour shapes that overlap partly. For comparison, the script also
times one region without the bounding-box crop (distance transforms on the full volume).

    nice .venv/bin/python benchmarks/bench_hd95.py [DATA_DIR] [--cases N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from brats_utils.conventions import labels_to_classes
from brats_utils.data.cases import discover_cases
from brats_utils.data.nifti import read_nifti
from brats_utils.evaluation.surface import hd95, mask_surface
from brats_utils.evaluation.volumes import evaluate_case, region_mask

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2018_sample"


def uncropped_hd95(pred: np.ndarray, ref: np.ndarray, spacing) -> float:
    """The same HD95 with the distance transforms over the whole volume (no crop)."""
    ps, rs = mask_surface(pred), mask_surface(ref)
    d1 = ndimage.distance_transform_edt(~rs, sampling=spacing)[ps]
    d2 = ndimage.distance_transform_edt(~ps, sampling=spacing)[rs]
    return float(np.percentile(np.concatenate([d1, d2]), 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cases", type=int, default=16, help="number of cases (default 16)")
    args = parser.parse_args()
    hd_times, eval_times = [], []
    for files in discover_cases(args.data_dir)[: args.cases]:
        labels, image = read_nifti(files.seg, files.case_id)
        ref = labels_to_classes(labels, files.release)
        spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
        pred = np.roll(np.roll(ref, 3, axis=0), 2, axis=2)
        start = time.perf_counter()
        values = [
            hd95(region_mask(pred, r), region_mask(ref, r), spacing) for r in ("WT", "TC", "ET")
        ]
        hd_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        evaluate_case(pred, ref, spacing)
        eval_times.append(time.perf_counter() - start)
        print(
            f"{files.case_id}: HD95 WT/TC/ET {values[0]:.2f}/{values[1]:.2f}/{values[2]:.2f} mm, "
            f"{hd_times[-1]:.3f} s; evaluate_case {eval_times[-1]:.3f} s"
        )
    wt_pred, wt_ref = region_mask(pred, "WT"), region_mask(ref, "WT")
    start = time.perf_counter()
    full = uncropped_hd95(wt_pred, wt_ref, spacing)
    full_time = time.perf_counter() - start
    if not np.isclose(full, values[0]):
        raise RuntimeError(f"cropped HD95 {values[0]} differs from uncropped {full}")
    print(
        f"{len(hd_times)} cases: HD95 of 3 regions {np.mean(hd_times):.3f} s/case "
        f"(max {np.max(hd_times):.3f}); evaluate_case {np.mean(eval_times):.3f} s/case "
        f"(max {np.max(eval_times):.3f})"
    )
    print(
        f"one region without the crop (last case, WT): {full_time:.3f} s, same value {full:.2f} mm"
    )


if __name__ == "__main__":
    main()
