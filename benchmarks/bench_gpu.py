"""GPU benchmark at the baseline's settings, on the active Keras backend (runs on a CPU too).

What a GPU runtime must deliver, measured in one run (ratios within the run, so a busy
machine shifts both sides alike):

- training slices/s on in-memory tensors (the model's ceiling) and fed by the real loader
  (:class:`~brats_utils.training.loader.SliceDataset` from a slice cache), their ratio
  (target >= 0.9), with and without mixed precision;
- the projected seconds of one BraTS 2021 epoch: 101,200 slices (100 slices of 1012
  training cases, the baseline's) and 156,860 (all 155 slices; the README's real-data setting);
- the loader alone: batches/s with 1..N worker threads (what it can feed a fast GPU);
- whole-volume inference: seconds per case (every slice predicted, resized back, NIfTI
  written) with ``brats predict``'s code;
- peak device memory where the backend reports it.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py                 # the baseline's scale
    python benchmarks/bench_gpu.py --size 32 --base-filters 4 --cases 2 --volume 64 64 40 \\
        --batch-sizes 8 --workers 1 2 --epochs 1                      # a CPU smoke run

The last line printed is one JSON object with every figure and the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from brats_utils.data.synth import write_synthetic_dataset
from brats_utils.model.experiments import get_experiment
from brats_utils.model.unet import build_model
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.fit import compile_model, precision_policy
from brats_utils.training.loader import SliceDataset, load_arrays

#: Slices of one BraTS 2021 training epoch: 1012 cases x 100 slices (the baseline's 22..121), and
#: x 155 (every slice).
EPOCH_SLICES = {"seed_100_slices": 101_200, "all_155_slices": 156_860}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8, help="synthetic cases (default 8)")
    parser.add_argument(
        "--volume", type=int, nargs=3, default=(240, 240, 155), metavar=("X", "Y", "Z"),
        help="synthetic volume (default BraTS')",
    )  # fmt: skip
    parser.add_argument("--size", type=int, default=128, help="slice size (baseline: 128)")
    parser.add_argument("--base-filters", type=int, default=32, help="U-Net width (baseline: 32)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--no-mixed-precision", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def _fastest_epoch(model, data, n_slices: int, epochs: int, batch_size: int) -> float:
    """Slices/s of the fastest of ``epochs`` timed epochs (after a warm-up epoch)."""
    times = []
    for k in range(epochs + 1):
        started = time.perf_counter()
        if isinstance(data, tuple):
            model.fit(*data, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        else:
            model.fit(data, epochs=1, verbose=0)
        if k:  # the first epoch traces and compiles
            times.append(time.perf_counter() - started)
    return n_slices / min(times)


def _loader_capacity(cache, case_ids, channels, batch_size: int, workers: int) -> float:
    """Batches/s the loader alone delivers (every batch of one epoch, read in order)."""
    data = SliceDataset(cache, case_ids, channels, batch_size, workers=workers, seed=0)
    started = time.perf_counter()
    for index in range(len(data)):
        data[index]
    return len(data) / (time.perf_counter() - started)


def _peak_memory_mb() -> float | None:
    """Peak device memory of the first accelerator, where the backend reports it."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            peak = stats.get("peak_bytes_in_use")
        elif backend == "torch":
            import torch

            peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        else:
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            peak = tf.config.experimental.get_memory_info(gpus[0].name)["peak"] if gpus else None
    except Exception:  # a backend without the counter
        peak = None
    return None if peak is None else round(peak / 2**20, 1)


def _inference_seconds(model, data: Path, settings, experiment, out_dir: Path) -> float:
    """Seconds per case of whole-volume prediction with `brats predict`'s code path."""
    from brats_utils.conventions import classes_to_labels
    from brats_utils.data.cases import discover_cases, read_case_volumes
    from brats_utils.data.nifti import write_nifti
    from brats_utils.inference.predict import predict_case

    config = {
        "experiment": experiment.name,
        "channels": list(experiment.channels),
        "image_size": settings.size,
        "preprocessing": settings.to_dict(),
    }
    cases = discover_cases(data)
    seconds = []
    for k, files in enumerate(cases):
        started = time.perf_counter()
        volumes = read_case_volumes(files, expected_shape=None)
        classes = predict_case([(model, config)], volumes, batch_size=64)
        labels = classes_to_labels(classes, files.release)
        write_nifti(out_dir / f"{files.case_id}.nii.gz", labels, volumes.image.affine)
        if k or len(cases) == 1:  # the first case traces the predict step
            seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def main() -> dict:
    args = parse_args()
    experiment = get_experiment("early2")
    keras.utils.set_random_seed(args.seed)
    result: dict = {"backend": keras.backend.backend(), "devices": _devices()}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        data, cache = Path(tmp) / "data", Path(tmp) / "cache"
        write_synthetic_dataset(data, args.cases, seed=args.seed, shape=tuple(args.volume),
                                progress=False)  # fmt: skip
        settings = PreprocessSettings(size=args.size, slice_start=0, slice_stop=None)
        build_cache(data, cache, settings, expected_shape=None, progress=False)
        case_ids = sorted(p.name for p in data.iterdir() if p.is_dir())
        x, y = load_arrays(cache, case_ids, experiment.channels)
        training = []
        for mixed in [False] if args.no_mixed_precision else [False, True]:
            for batch_size in args.batch_sizes:
                with precision_policy(mixed):
                    model = build_model(experiment, args.size, base_filters=args.base_filters)
                    compile_model(model)
                    memory = _fastest_epoch(model, (x, y), len(x), args.epochs, batch_size)
                    loader = SliceDataset(cache, case_ids, experiment.channels, batch_size,
                                          workers=max(args.workers), seed=0)  # fmt: skip
                    fed = _fastest_epoch(model, loader, loader.num_slices, args.epochs,
                                         batch_size)  # fmt: skip
                training.append({
                    "mixed_precision": mixed,
                    "batch_size": batch_size,
                    "in_memory_slices_per_s": round(memory, 1),
                    "loader_slices_per_s": round(fed, 1),
                    "ratio": round(fed / memory, 3),
                    "projected_epoch_s": {k: round(n / fed, 1) for k, n in EPOCH_SLICES.items()},
                })  # fmt: skip
        result["training"] = training
        batch = args.batch_sizes[0]
        result["loader_batches_per_s"] = {
            w: round(_loader_capacity(cache, case_ids, experiment.channels, batch, w), 1)
            for w in args.workers
        }
        result["loader_slices_per_s_by_workers"] = {
            w: round(b * batch, 1) for w, b in result["loader_batches_per_s"].items()
        }
        model = build_model(experiment, args.size, base_filters=args.base_filters)
        out = Path(tmp) / "pred"
        out.mkdir()
        result["inference_s_per_case"] = round(
            _inference_seconds(model, data, settings, experiment, out), 2
        )
        result["peak_device_memory_mb"] = _peak_memory_mb()
    result.update({
        "size": args.size, "base_filters": args.base_filters, "cases": args.cases,
        "volume": list(args.volume), "slices": len(x), "epochs": args.epochs,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
    })  # fmt: skip
    print(json.dumps(result))
    return result


def _devices() -> list[str]:
    try:
        return [str(d) for d in keras.distribution.list_devices()]
    except Exception:  # TensorFlow without the distribution API on this build
        return []


if __name__ == "__main__":
    main()
