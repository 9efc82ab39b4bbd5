"""Where a model fails: voxel error maps per region and a table of the worst cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brats_utils.conventions import REGIONS
from brats_utils.errors import check_choice

__all__ = ["ERROR_CODES", "error_map", "error_map_path", "region_volumes_ml", "failure_table"]

#: Voxel codes of an error map: true negative, true positive, false positive, false negative.
ERROR_CODES: dict[str, int] = {"TN": 0, "TP": 1, "FP": 2, "FN": 3}


def error_map(pred_classes: np.ndarray, ref_classes: np.ndarray) -> np.ndarray:
    """(X, Y, Z) classes -> (X, Y, Z, 3) uint8 :data:`ERROR_CODES`, channels WT, TC, ET."""
    pred_classes, ref_classes = np.asarray(pred_classes), np.asarray(ref_classes)
    if pred_classes.shape != ref_classes.shape:
        raise ValueError(f"shapes differ: {pred_classes.shape} and {ref_classes.shape}")
    out = np.zeros((*ref_classes.shape, len(REGIONS)), dtype=np.uint8)
    codes = [ERROR_CODES["TP"], ERROR_CODES["FP"], ERROR_CODES["FN"]]
    for channel, classes in enumerate(REGIONS.values()):
        pred, ref = np.isin(pred_classes, classes), np.isin(ref_classes, classes)
        out[..., channel] = np.select([pred & ref, pred, ref], codes)  # the first that holds
    return out


def error_map_path(folder: Path | str, case_id: str) -> Path:
    return Path(folder) / f"{case_id}_errors.nii.gz"


def region_volumes_ml(classes: np.ndarray, spacing) -> dict[str, float]:
    """``{"volume_WT_ml": ..., ...}`` of a class array, ``spacing`` in mm."""
    voxel_ml = float(np.prod([float(s) for s in spacing])) / 1000.0
    return {
        f"volume_{region}_ml": float(np.count_nonzero(np.isin(classes, members)) * voxel_ml)
        for region, members in REGIONS.items()
    }


def failure_table(per_case: pd.DataFrame, region: str = "WT") -> pd.DataFrame:
    """Cases of ``evaluate_folder``'s table, worst ``dice`` (then ``lesion_dice``) first."""
    check_choice("region", region, REGIONS)
    columns = {
        "dice": f"dice_{region}",
        "hd95": f"hd95_{region}",
        "lesion_dice": f"lesion_dice_{region}",
        "volume_ml": f"volume_{region}_ml",
        "tp": f"lesion_tp_{region}",
        "fp_lesions": f"lesion_fp_{region}",
        "fn_lesions": f"lesion_fn_{region}",
    }
    missing = [c for c in ("case", *columns.values(), "status") if c not in per_case.columns]
    if missing:
        raise ValueError(f"per-case table lacks columns {missing} (from brats evaluate)")
    table = per_case[["case", *columns.values()]].set_axis(["case", *columns], axis=1)
    table["lesions"] = table.pop("tp") + table["fn_lesions"]
    table["status"] = per_case["status"].to_numpy()
    return table.sort_values(["dice", "lesion_dice"], kind="stable").reset_index(drop=True)
