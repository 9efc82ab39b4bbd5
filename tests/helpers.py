"""Helpers shared by the tests (importable as ``helpers``: pyproject puts tests/ on the path)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.conventions import LEGACY, MODALITIES
from brats_utils.data.nifti import write_nifti
from brats_utils.data.synth import generate_case
from brats_utils.preprocessing.settings import PreprocessSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The 16 real BraTS 2018 cases lent to the project; never copied into the repository.
REAL_SAMPLE_DIR = Path(
    os.environ.get("BRATS_SAMPLE_DIR", REPO_ROOT.parent / "shared" / "data" / "brats2018_sample")
)

#: Packages a light import (CLI help, check, synth, preprocessing, run folders) must not load.
ML_FRAMEWORKS = ("keras", "tensorflow", "jax", "torch")


def ml_frameworks_loaded_by(*modules: str) -> list[str]:
    """Import ``modules`` in a fresh interpreter; return the ML frameworks that got loaded."""
    code = (
        f"import sys, {', '.join(modules)}; "
        f"print(','.join(m for m in {ML_FRAMEWORKS!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return [m for m in result.stdout.strip().split(",") if m]


def require_backend(backend: str) -> None:
    """Skip the test when the Keras ``backend``'s package is not installed; in CI (``CI`` set,
    as ``.ci/run`` is run) fail instead: ``make setup`` installs every backend there."""
    import pytest

    package = backend  # each backend's package has its name
    if importlib.util.find_spec(package) is not None:
        return
    message = f"the Keras backend {backend!r} needs {package!r}, which is not installed here"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (make setup installs it)")
    pytest.skip(message)


def case_files(folder: Path):
    """The ``CaseFiles`` of one case folder, as ``discover_cases`` finds them."""
    from brats_utils.data.cases import discover_cases

    (files,) = discover_cases(folder)
    return files


def write_tiny_case(
    root: Path,
    case_id: str,
    *,
    shape: tuple[int, int, int] = (20, 18, 12),
    seed: int = 0,
    seg: bool = True,
    tumour_z: tuple[int, int] = (3, 8),
    drop: str | None = None,
    radius: float = 0.45,
) -> Path:
    """Write a BraTS-2018-named case of random int16 scans with an ellipsoid brain.

    The tumour (labels 1, 2, 4) is a block around the centre on slices ``tumour_z``.
    ``drop`` leaves one modality file out; ``radius`` is the brain's, as a fraction of
    the shape.
    """
    rng = np.random.default_rng(seed)
    folder = root / case_id
    folder.mkdir(parents=True)
    x, y, z = np.indices(shape)
    cx, cy, cz = ((np.array(shape) - 1) / 2).tolist()
    radii = [radius * n for n in shape]
    brain = ((x - cx) / radii[0]) ** 2 + ((y - cy) / radii[1]) ** 2 + (
        (z - cz) / radii[2]
    ) ** 2 <= 1
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for modality in MODALITIES:
        if modality != drop:
            data = np.where(brain, rng.integers(50, 1000, shape), 0).astype(np.int16)
            write_nifti(folder / LEGACY.file_name(case_id, modality), data, affine)
    if seg:
        labels = np.zeros(shape, dtype=np.uint8)
        core = brain & (abs(x - cx) <= 3) & (abs(y - cy) <= 3)
        core &= (z >= tumour_z[0]) & (z < tumour_z[1])
        labels[core] = rng.choice(np.array([1, 2, 4], dtype=np.uint8), size=int(core.sum()))
        write_nifti(folder / LEGACY.file_name(case_id, "seg"), labels, affine)
    return folder


# --- a run folder with a model whose output is known, for inference tests ------------------

#: Small volumes for inference tests; every slice is predicted.
SHAPE_SMALL = (32, 32, 16)
SHARPNESS = 20.0


def rounding_model(size: int, n_channels: int):
    """1x1 conv: logit_k = s * (k * x0 - k^2 / 2), so argmax_k = clip(round(x0), 0, 3)."""
    import keras

    inputs = keras.Input((size, size, n_channels))
    conv = keras.layers.Conv2D(4, 1, activation="softmax")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((1, 1, n_channels, 4), dtype=np.float32)
    k = np.arange(4, dtype=np.float32)
    kernel[0, 0, 0, :] = SHARPNESS * k
    conv.set_weights([kernel, -SHARPNESS * k**2 / 2])
    return model


def run_config(
    settings: PreprocessSettings, channels=("flair", "t1ce"), experiment=None, context=1
) -> dict:
    """The ``config.json`` :func:`predict_volume` reads, of a run with these settings."""
    return {
        "experiment": experiment or {2: "early2", 4: "early4"}[len(channels)],
        "channels": list(channels),
        "image_size": settings.size,
        "preprocessing": settings.to_dict(),
        "training": {"context_slices": context},
    }


def write_run(run_dir: Path, size: int, experiment="early2", channels=("flair", "t1ce"), **extra):
    """A run folder like ``brats train`` writes: model.keras + config.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    model = rounding_model(size, len(channels))
    model.save(run_dir / "model.keras")
    config = {
        "experiment": experiment,
        "channels": list(channels),
        "image_size": size,
        "num_classes": 4,
        "preprocessing": PreprocessSettings(size=size, slice_start=0, slice_stop=None).to_dict(),
        **extra,
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    return run_dir / "model.keras"


def write_case_folder(root: Path, case_id: str, release, index: int, with_seg=True) -> Path:
    """A small synthetic case in ``release``'s naming, with a recognisable header."""
    case = generate_case(seed=3, index=index, shape=SHAPE_SMALL)
    header = nib.Nifti1Header()
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = b"source header"
    affine = case.affine.copy()
    affine[:3, 3] += (5.0, -7.0, 11.0)
    folder = root / case_id
    for c, modality in enumerate(MODALITIES):
        path = folder / release.file_name(case_id, modality)
        write_nifti(path, case.image[..., c], affine, header)
    if with_seg:
        labels = np.asarray(release.labels, dtype=np.uint8)[case.classes]
        write_nifti(folder / release.file_name(case_id, "seg"), labels, affine, header)
    return folder


# --- processes killed on purpose: their children, waiting, and what they left on disk -------


def child_pids(pid: int) -> list[int]:
    """Every descendant of process ``pid`` (psutil if installed, else ``/proc``)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def is_running(pid: int) -> bool:
    """True if ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        if not Path("/proc").is_dir():  # no /proc (macOS): ask the kernel
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            return True
        return False
    return state not in ("Z", "X")


def wait_until(condition, timeout: float, interval: float = 0.02) -> bool:
    """Call ``condition()`` until it is true or ``timeout`` seconds passed; its last answer."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(interval)
    return True


def snapshot(root: Path, hash_up_to: int | None = None) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under ``root`` (hidden ones too), or ``root`` itself if a file.

    Returns:
        relative path -> ``(size, mtime_ns, sha256)``; folders end with ``/`` and ``(0, 0, "")``.
        Files larger than ``hash_up_to`` bytes (if given) are not hashed (``""``): their size
        and mtime tell a rewrite.
    """
    import hashlib

    def entry(path: Path) -> tuple[int, int, str]:
        stat = path.stat()
        hashed = hash_up_to is None or stat.st_size <= hash_up_to
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if hashed else ""
        return stat.st_size, stat.st_mtime_ns, digest

    root = Path(root)
    if root.is_file():
        return {".": entry(root)}
    found = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.is_dir():
            found[f"{path.relative_to(root)}/"] = (0, 0, "")
        elif path.is_file():
            found[str(path.relative_to(root))] = entry(path)
    return found


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and all its group; reap it."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def write_tiny_cache(root: Path) -> Path:
    """Three small synthetic cases (48 x 48 x 24) cached at 16 x 16 under ``root``, split
    1/1/1 (``root/data/split.csv``); returns the cache folder."""
    from brats_utils.data.split import save_split
    from brats_utils.data.synth import write_synthetic_dataset
    from brats_utils.preprocessing.cache_build import build_cache

    data, cache = root / "data", root / "cache"
    write_synthetic_dataset(data, 3, seed=0, shape=(48, 48, 24), progress=False)
    settings = PreprocessSettings(size=16, slice_start=4, slice_stop=20)
    build_cache(data, cache, settings, progress=False, expected_shape=None)
    cases = sorted(p.name for p in data.iterdir() if p.is_dir())
    save_split(dict(zip(cases, ["train", "validation", "test"], strict=True)), data / "split.csv")
    return cache


def batches(x: np.ndarray, y: np.ndarray, batch_size: int = 4):
    """``(x, y)`` arrays as a ``keras.utils.PyDataset`` of ``batch_size`` batches, in order."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return -(-len(x) // batch_size)

        def __getitem__(self, i):
            return x[i * batch_size : (i + 1) * batch_size], y[
                i * batch_size : (i + 1) * batch_size
            ]

    return Batches()
