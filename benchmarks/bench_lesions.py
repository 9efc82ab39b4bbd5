"""Seconds per case of the lesion-wise metrics (three regions) on real cases, and of the
connected-component labelling they rest on: scipy.ndimage.label against cc3d.

The "prediction" is a realistic imperfect one: the reference shifted by 2 voxels along x,
dilated once, with six 2x2x2 false-positive specks, so every region has matched lesions and
false positives. Figures are medians over cases, measured in one run.

    nice .venv/bin/python benchmarks/bench_lesions.py [DATA_DIR] [--cases N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from brats_utils.conventions import REGIONS, labels_to_classes
from brats_utils.data.cases import discover_cases
from brats_utils.data.nifti import read_nifti
from brats_utils.evaluation.lesions import lesion_metrics
from brats_utils.evaluation.volumes import evaluate_case

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2018_sample"


def imperfect_prediction(ref: np.ndarray, seed: int) -> np.ndarray:
    """Classes shifted and grown, plus specks of enhancing tumour far from the tumour."""
    rng = np.random.default_rng(seed)
    pred = np.roll(ref, 2, axis=0)
    grown = ndimage.grey_dilation(pred, size=(3, 3, 3))
    pred = np.where(pred > 0, pred, grown)
    for _ in range(6):
        x, y, z = (int(rng.integers(30, s - 30)) for s in ref.shape)
        pred[x : x + 2, y : y + 2, z : z + 2] = 3
    return pred


def seconds(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cases", type=int, default=16, help="number of cases (default 16)")
    args = parser.parse_args()
    try:
        import cc3d
    except ImportError:
        cc3d = None
    legacy, lesion, scipy_cc, cc3d_cc = [], [], [], []
    structure = ndimage.generate_binary_structure(3, 3)
    for i, files in enumerate(discover_cases(args.data_dir)[: args.cases]):
        labels, image = read_nifti(files.seg, files.case_id)
        ref = labels_to_classes(labels, files.release)
        spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
        pred = imperfect_prediction(ref, seed=i)
        legacy.append(seconds(evaluate_case, pred, ref, spacing))
        lesion.append(seconds(lesion_metrics, pred, ref, spacing))
        masks = [np.isin(pred, classes) for classes in REGIONS.values()]
        scipy_cc.append(sum(seconds(ndimage.label, m, structure=structure) for m in masks))
        if cc3d is not None:
            as_uint8 = [m.astype(np.uint8) for m in masks]
            cc3d_cc.append(
                sum(seconds(cc3d.connected_components, m, connectivity=26) for m in as_uint8)
            )
        scores = lesion_metrics(pred, ref, spacing)
        print(
            f"{files.case_id}: lesion Dice WT/TC/ET {scores['lesion_dice_WT']:.3f}/"
            f"{scores['lesion_dice_TC']:.3f}/{scores['lesion_dice_ET']:.3f}, FP ET "
            f"{scores['lesion_fp_ET']}; legacy {legacy[-1]:.3f} s, lesion-wise {lesion[-1]:.3f} s"
        )
    median = statistics.median
    print(f"\n{len(legacy)} cases, medians:")
    print(f"  legacy evaluate_case, 3 regions:        {median(legacy):.3f} s/case")
    print(f"  lesion_metrics, 3 regions (GLI rules):  {median(lesion):.3f} s/case")
    print(f"  labelling 3 full-volume masks, scipy:   {median(scipy_cc):.3f} s")
    if cc3d_cc:
        ratio = median(scipy_cc) / median(cc3d_cc)
        print(f"  the same with cc3d:                     {median(cc3d_cc):.3f} s ({ratio:.1f}x)")
    else:
        print("  cc3d not installed (dev extra): no comparison")


if __name__ == "__main__":
    main()
