"""Does the cache's float16 precision change segmentations? Real cases, one trained model.

Every case is predicted twice by the same run's model: from float16-rounded input (what the
cache stores and inference now feeds) and from float32 input (the cache before version 2).
Prints per case the region Dice of each against the reference, their agreement, and the mean
paired difference with a 95% bootstrap interval (the last line is JSON).

    python benchmarks/check_float16_inputs.py --model outputs/real16/runs/early2 \\
        --data ../shared/data/brats2018_sample
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import brats_utils.preprocessing.slices as slices
from brats_utils.data.cases import discover_cases, read_case_volumes
from brats_utils.evaluation.compare import bootstrap_mean_ci
from brats_utils.evaluation.volumes import dice, region_mask
from brats_utils.inference.predict import predict_case
from brats_utils.inference.run_config import load_models

REGIONS = ("WT", "TC", "ET")


class _Float32Numpy:
    """numpy, except that ``float16`` is float32: preprocess_channels then does not round."""

    def __getattr__(self, name: str):
        return np.float32 if name == "float16" else getattr(np, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="run folder")
    parser.add_argument("--data", type=Path, required=True, help="labelled data folder")
    args = parser.parse_args()
    members, _ = load_models(args.model)
    rows = []
    for files in discover_cases(args.data):
        volumes = read_case_volumes(files, expected_shape=None)
        ref = np.asarray(volumes.seg)  # classes 0..3
        half = predict_case(members, volumes)
        slices.np = _Float32Numpy()
        try:
            full = predict_case(members, volumes)
        finally:
            slices.np = np
        row = {"case": files.case_id, "voxels_differing": int(np.count_nonzero(half != full))}
        for region in REGIONS:
            truth = region_mask(ref, region)
            row[f"float16_{region}"] = dice(region_mask(half, region), truth)
            row[f"float32_{region}"] = dice(region_mask(full, region), truth)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"cases": len(rows), "model": str(args.model)}
    for region in REGIONS:
        a = np.array([r[f"float16_{region}"] for r in rows])
        b = np.array([r[f"float32_{region}"] for r in rows])
        low, high = bootstrap_mean_ci(a - b)
        summary[region] = {
            "float16": round(float(a.mean()), 4),
            "float32": round(float(b.mean()), 4),
            "difference": round(float((a - b).mean()), 5),
            "ci95": [round(float(low), 5), round(float(high), 5)],
        }
    summary["voxels_differing_per_case"] = float(np.mean([r["voxels_differing"] for r in rows]))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
