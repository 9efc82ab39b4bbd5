"""``kill -9`` at chosen points, then the same command again: the result is an uninterrupted run's.

For ``synth``, ``preprocess``, ``predict`` and ``train`` (tiny sizes), each test runs the
command once uninterrupted (the reference), then starts it again in a subprocess (its own
process group), kills it with SIGKILL at a deterministic point (when the output folder shows
the k-th file, or when ``state.json`` / ``history.json`` say how far training got), reruns the
same command (with ``--resume`` for ``train``) and compares: the same files, the same bytes
(NIfTI and ``.npy``; the cache manifest as JSON), the same training history to the last
printed digit and the same weights, and no hidden temporary or stray file left. ``preprocess``
also shows that its worker processes end with their killed parent and write nothing more.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    REPO_ROOT,
    child_pids,
    is_running,
    kill_group,
    snapshot,
    wait_until,
    write_run,
    write_tiny_cache,
)

from brats_utils.conventions import LEGACY

pytestmark = pytest.mark.slow

ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def brats(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``brats ARGS`` to the end."""
    result = subprocess.run([sys.executable, "-m", "brats_utils", *args], env=ENV,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def killed(args: list[str], when, timeout: float = 120) -> list[int]:
    """Start ``brats ARGS``, SIGKILL it (the parent only) once ``when()`` is true.

    Returns:
        The pids of its children just before the kill. Fails if it ended first.
    """
    process = subprocess.Popen([sys.executable, "-m", "brats_utils", *args], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    try:
        reached = wait_until(lambda: when() or process.poll() is not None, timeout, 0.005)
        assert reached and process.poll() is None, "the command ended before the kill point"
        children = child_pids(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return children
    finally:
        kill_group(process)  # nothing of it outlives the test, whatever happened


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too): relative path -> bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def assert_same_files(found: Path, expected: Path, json_names=()) -> None:
    """The same file names and bytes (files in ``json_names`` compared as JSON)."""
    a, b = files(found), files(expected)
    assert sorted(a) == sorted(b)  # nothing missing, no stray or hidden temporary file
    for name in a:
        if Path(name).name in json_names:
            assert json.loads(a[name]) == json.loads(b[name]), name
        else:
            assert a[name] == b[name], name


def count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


@pytest.fixture(scope="module")
def full_data(tmp_path_factory) -> Path:
    """Six full-size cases (240 x 240 x 155, as `brats preprocess` wants): one synthetic case
    copied under six ids (fast to make, each as slow to preprocess as a real one)."""
    from brats_utils.data.synth import write_synthetic_dataset

    root = tmp_path_factory.mktemp("faults")
    write_synthetic_dataset(root / "one", 1, seed=0, progress=False)
    source = root / "one" / "BraTS2021_00000"
    data = root / "data"
    for i in range(6):
        case_id = f"BraTS2021_{i:05d}"
        (data / case_id).mkdir(parents=True)
        for kind in ("t1", "t1ce", "t2", "flair", "seg"):
            shutil.copy(source / LEGACY.file_name(source.name, kind),
                        data / case_id / LEGACY.file_name(case_id, kind))  # fmt: skip
    return data


def test_synth_killed_mid_case_then_rerun_writes_the_uninterrupted_cases(tmp_path):
    args = ["--cases", "4", "--shape", "128", "128", "80", "--no-progress"]
    brats("synth", "--out", str(tmp_path / "reference"), *args)
    out = tmp_path / "out"
    command = ["synth", "--out", str(out), *args]
    for k in (2, 4):  # killed while case k-1 (0-based) is being written
        killed(command, lambda k=k: count(out, "BraTS2021_*") >= k)
        brats(*command)
        assert_same_files(out, tmp_path / "reference")
        shutil.rmtree(out)


def test_preprocess_workers_end_with_their_killed_parent_and_a_rerun_completes(full_data, tmp_path):
    args = ["--size", "32", "--slices", "60:76", "-q"]
    brats("preprocess", str(full_data), "--out", str(tmp_path / "reference"), *args)
    cache = tmp_path / "cache"
    command = ["preprocess", str(full_data), "--out", str(cache), "--workers", "2", *args]
    for k in (1, 3):  # killed after the k-th case is finished
        workers = killed(command, lambda k=k: count(cache / "cases", "*.json") >= k)
        assert len(workers) == 2
        assert wait_until(lambda w=workers: not any(map(is_running, w)), timeout=3), workers
        left = snapshot(cache)
        wait_until(lambda: False, timeout=1.0)
        assert snapshot(cache) == left  # nothing goes on writing after the kill
        brats(*command)
        assert_same_files(cache, tmp_path / "reference", json_names=("manifest.json",))
        shutil.rmtree(cache)


def test_predict_killed_between_cases_then_rerun_writes_the_same_files(full_data, tmp_path):
    model = write_run(tmp_path / "run", 16)
    data = tmp_path / "data"
    data.mkdir()
    for case_id in ("BraTS2021_00000", "BraTS2021_00001", "BraTS2021_00002"):
        (data / case_id).symlink_to(full_data / case_id)
    args = ["predict", "--model", str(model), "--input", str(data)]
    brats(*args, "--out", str(tmp_path / "reference"))
    out = tmp_path / "out"
    killed([*args, "--out", str(out)], lambda: count(out, "*.nii.gz") >= 1)
    rerun = brats(*args, "--out", str(out))
    assert "skipped" in rerun.stdout  # the finished cases were kept, not predicted again
    assert_same_files(out, tmp_path / "reference")


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory) -> Path:
    """Three small synthetic cases cached at 16 x 16, split 1/1/1 (as in tests/training)."""
    return write_tiny_cache(tmp_path_factory.mktemp("tiny"))


def _epochs_done(run: Path, name: str) -> int:
    try:
        data = json.loads((run / name).read_text())
    except (OSError, ValueError):
        return 0
    return data["epoch"] if name == "state.json" else len(data)


def _history(run: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader((run / "history.csv").open()))
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_train_killed_and_resumed_ends_as_the_uninterrupted_run(tiny_cache, tmp_path):
    import keras

    from brats_utils.training.train import train

    settings = dict(epochs=3, batch_size=4, base_filters=4, augment=True,
                    empty_slice_fraction=0.5)  # fmt: skip
    reference, run = tmp_path / "reference", tmp_path / "run"
    train("early2", tiny_cache, reference, verbose=0, **settings)  # here: no second start-up
    args = ["train", "--experiment", "early2", "--cache", str(tiny_cache), "--out", str(run)]
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    # Killed in epoch 2; then resumed and killed again in epoch 3, just after its history
    # record was written, before (or while) its models and state.json are committed.
    killed(args, lambda: _epochs_done(run, "state.json") >= 1)
    killed([*args, "--resume"], lambda: _epochs_done(run, "history.json") >= 3)
    brats(*args, "--resume")
    assert _history(run) == _history(reference)  # to the last printed digit
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in reference.iterdir())
    for name in ("model.keras", "model_last.keras"):
        a = keras.saving.load_model(run / name).get_weights()
        b = keras.saving.load_model(reference / name).get_weights()
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), name
