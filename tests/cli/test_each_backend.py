"""``brats train`` -> ``predict`` -> ``evaluate`` on the JAX and PyTorch backends, as a user runs
them: one command per process, ``KERAS_BACKEND`` set, with ``--mixed-precision`` (float16
compute, float32 softmax). Float32 training, prediction and evaluation on these backends run
in notebook 05 on each backend (``tests/notebooks/test_notebooks.py``), so the CLI run here
is the mixed-precision one only.

TensorFlow, the default backend, runs these commands in the rest of the suite
(``tests/cli/test_recipes.py``, ``tests/inference``, ``tests/training``). The small synthetic
cases and their slice cache are made once (``brats synth``, ``brats split``, ``brats
preprocess``: numpy only, the same on every backend) and shared by the runs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers import require_backend

from brats_utils.conventions import HD95_MAX_MM, LEGACY

pytestmark = pytest.mark.slow

SHAPE = (64, 64, 40)

#: The console script of this environment (``python -m brats_utils`` where it is absent).
_SCRIPT = Path(sys.executable).with_name("brats")
BRATS = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "brats_utils"]


def brats(*args, env: dict[str, str] | None = None, timeout: int = 600):
    """Run ``brats ARGS`` in a new process, with ``env`` added to this one's environment."""
    done = subprocess.run(
        [*BRATS, *map(str, args)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (args[0], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, Path]:
    """Three small synthetic cases (seed 5, 64 x 64 x 40: the commands read any shape the
    data folder records; full size is the geometry tests' business), split 1/1/1 by
    ``brats split``, cached at 16 x 16."""
    root = tmp_path_factory.mktemp("each_backend")
    data, cache = root / "data", root / "cache"
    brats("synth", "--out", data, "--cases", 3, "--seed", 5, "--shape", *SHAPE, "--no-progress")
    brats("split", data)
    split = pd.read_csv(data / "split.csv")
    assert sorted(split["split"]) == ["test", "train", "validation"]
    brats("preprocess", data, "--out", cache, "--size", 16, "--slices", "10:34", "-q")
    test_case = split.loc[split["split"] == "test", "case"].item()
    return {"data": data, "cache": cache, "split": data / "split.csv", "test": test_case}


def _saved_dtype_policies(model_file: Path) -> list[str]:
    """The dtype policy of every layer of a ``.keras`` file, read from its config.json."""
    with zipfile.ZipFile(model_file) as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    return [layer["config"]["dtype"]["config"]["name"] for layer in layers
            if isinstance(layer["config"].get("dtype"), dict)]  # fmt: skip


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_predict_evaluate_on_the_backend(backend, prepared, backend_env, tmp_path):
    require_backend(backend)
    env = {**backend_env, "KERAS_BACKEND": backend}
    run, pred, scores = tmp_path / "run", tmp_path / "pred", tmp_path / "scores.csv"
    precision = ["--mixed-precision"]
    brats("train", "--experiment", "early2", "--cache", prepared["cache"], "--out", run,
          "--epochs", 1, "--batch-size", 16, "--base-filters", 4, *precision,
          env=env)  # fmt: skip

    # The run folder, and what it says about the backend that trained it.
    for name in ("model.keras", "model_last.keras", "history.csv", "state.json"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["backend"] == backend and config["versions"]["backend"] == backend
    assert config["versions"][backend]  # the backend's version is recorded
    assert config["training"]["mixed_precision"] is True
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 1 and np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()
    policies = _saved_dtype_policies(run / "model.keras")
    # float16 compute in the network, the softmax kept float32
    assert "mixed_float16" in policies and policies[-1] == "float32", policies

    brats("predict", "--model", run, "--input", prepared["data"], "--out", pred,
          "--split", prepared["split"], "--subset", "test", env=env)  # fmt: skip
    case = prepared["test"]
    written = sorted(p.name for p in pred.iterdir())
    assert written == [f"{case}.nii.gz"]
    image = nib.load(pred / written[0])
    reference = nib.load(prepared["data"] / case / LEGACY.file_name(case, "seg"))
    assert image.shape == reference.shape == SHAPE
    np.testing.assert_allclose(image.affine, reference.affine)
    labels = np.unique(np.asarray(image.dataobj))
    assert set(labels.tolist()) <= set(LEGACY.labels), labels  # the release's own labels

    brats("evaluate", "--pred", pred, "--ref", prepared["data"], "--out", scores,
          "--split", prepared["split"], "--subset", "test", env=env)  # fmt: skip
    table = pd.read_csv(scores)
    assert table["case"].tolist() == [case] and (table["status"] == "ok").all()
    for region in ("WT", "TC", "ET"):
        dice, hd95 = table[f"dice_{region}"].item(), table[f"hd95_{region}"].item()
        assert 0.0 <= dice <= 1.0 and math.isfinite(hd95) and 0.0 <= hd95 <= HD95_MAX_MM
