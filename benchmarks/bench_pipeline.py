"""Slices per second of the naive per-batch NIfTI loader vs SliceDataset over the cache,
and seconds per case of preprocessing vs the bare time to read the case's files.

Both sides see the same cases (default: synthetic ones written to a temporary folder):

* naive: what the usual BraTS notebooks do for every batch of every epoch. One batch is one
  case (the notebook's ``batch_size=1`` case = 100 slices): read its four modalities and its
  segmentation with nibabel (``get_fdata()``, float64), keep slices 22..121, divide by the
  maximum, resize every slice to SIZE x SIZE with linear interpolation (our
  :func:`~brats_utils.preprocessing.resize.resize_images`, the same sampling as
  ``cv2.resize`` and at least as fast, so the naive side is not slowed down by a slow
  resizer), labels by nearest neighbour, one-hot.
* cached: :class:`~brats_utils.training.loader.SliceDataset` over the slice cache, shuffled, batch
  32, one epoch to warm up, then ``--epochs`` timed epochs, in this process (one core).

Preprocessing is ``build_cache`` for one case at a time (read + normalise + resize + write),
interleaved with the bare read of the same case's five ``.nii.gz`` files
(``np.asanyarray(nib.load(path).dataobj)``: decompression only, on-disk int16), so both
share the same machine load. A breakdown times ``preprocess_files`` (what the builder runs
per case), ``preprocess_channels`` alone (on volumes already read), the writes, and, for
comparison, the route through ``load_case`` (float32 copy of the case) + ``preprocess_case``.
Times are wall-clock and CPU seconds of this process (the CPU column is the better estimate
of one core's cost on a shared machine).

    nice .venv/bin/python benchmarks/bench_pipeline.py [--data DIR] [--cases 8] [--size 128]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.conventions import NUM_CLASSES, labels_to_classes
from brats_utils.data.cases import KINDS, CaseFiles, discover_cases, load_case
from brats_utils.preprocessing.cache import open_cache
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.resize import resize_images, resize_labels
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.preprocessing.slices import (
    preprocess_case,
    preprocess_channels,
    preprocess_files,
)
from brats_utils.training.loader import SliceDataset


def naive_batch(files: CaseFiles, settings: PreprocessSettings) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the usual notebook generator: one case, every kept slice, from NIfTI."""
    zs = slice(settings.slice_start, settings.slice_stop)
    volumes = [nib.load(files.path(m)).get_fdata()[:, :, zs] for m in KINDS[:4]]
    seg = labels_to_classes(np.asanyarray(nib.load(files.seg).dataobj)[:, :, zs], files.release)
    x = np.stack(volumes, axis=-1).transpose(2, 0, 1, 3)  # (S, X, Y, 4)
    x = resize_images(x / np.max(x), settings.size)
    y = resize_labels(seg.transpose(2, 0, 1), settings.size)
    return x, np.eye(NUM_CLASSES, dtype=np.float32)[y]


def bare_read(files: CaseFiles) -> None:
    """Decompress the case's five files (on-disk dtype, no conversion)."""
    for kind in KINDS:
        np.asanyarray(nib.load(files.path(kind)).dataobj)


class Clock:
    """Accumulates wall and CPU (this process) seconds of timed calls."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __call__(self, function, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        return result


def measure_preprocessing(cases, data: Path, cache_dir: Path, settings, scratch: Path) -> dict:
    """Clocks of bare reads, build_cache per case and its stages, interleaved case by case."""
    names = ("bare", "build", "preprocess_files", "preprocess_channels", "write", "via_load_case")
    clocks = {name: Clock() for name in names}
    for files in cases:
        bare_read(files)  # files into the page cache: both sides read from memory
    for files in cases:
        clocks["bare"](bare_read, files)
        clocks["build"](
            lambda f=files: build_cache(
                data, cache_dir, settings, case_ids=[f.case_id], progress=False
            )
        )
        images, labels, _ = clocks["preprocess_files"](preprocess_files, files, settings)
        clocks["write"](np.save, scratch, images)
        clocks["write"](np.save, scratch, labels)
        channels = [np.asanyarray(nib.load(files.path(m)).dataobj) for m in KINDS[:4]]
        seg = labels_to_classes(np.asanyarray(nib.load(files.seg).dataobj), files.release)
        clocks["preprocess_channels"](preprocess_channels, channels, seg, settings)
        clocks["via_load_case"](lambda f=files: preprocess_case(load_case(f), settings))
    return clocks


def measure_loaders(cases, cache_dir: Path, settings, batch_size: int, epochs: int, seed: int):
    """Slices per second (wall, CPU) of the naive loader and of SliceDataset (after warm-up)."""
    naive = Clock()
    n_naive = sum(len(naive(naive_batch, files, settings)[0]) for files in cases)
    dataset = SliceDataset(
        open_cache(cache_dir), [f.case_id for f in cases], batch_size=batch_size, seed=seed
    )
    warm_up, cached = Clock(), Clock()
    n_cached = 0
    for epoch in range(epochs + 1):
        clock = warm_up if epoch == 0 else cached
        n = sum(len(clock(dataset.__getitem__, i)[0]) for i in range(len(dataset)))
        n_cached += n if epoch else 0
        dataset.on_epoch_end()
    return {
        "naive": (n_naive / naive.wall, n_naive / naive.cpu),
        "cached": (n_cached / cached.wall, n_cached / cached.cpu),
        "warm_up": n / warm_up.wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="data folder (default: synthetic cases)")
    parser.add_argument("--cases", type=int, default=8, help="number of cases (default 8)")
    parser.add_argument("--size", type=int, default=128, help="slice size (default 128)")
    parser.add_argument("--batch-size", type=int, default=32, help="cached batch size")
    parser.add_argument("--epochs", type=int, default=3, help="timed cached epochs")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    args = parser.parse_args()
    settings = PreprocessSettings(size=args.size)

    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        data = args.data
        if data is None:
            from brats_utils.data.synth import write_synthetic_dataset

            data = Path(tmp) / "data"
            print(f"writing {args.cases} synthetic cases to {data} ...", flush=True)
            write_synthetic_dataset(data, args.cases, args.seed, progress=False)
        cases = [f for f in discover_cases(data) if f.seg is not None][: args.cases]
        cache_dir = Path(tmp) / "cache"
        clocks = measure_preprocessing(cases, data, cache_dir, settings, Path(tmp) / "x.npy")
        rates = measure_loaders(cases, cache_dir, settings, args.batch_size, args.epochs, args.seed)

    n = len(cases)
    per_case = {k: (c.wall / n, c.cpu / n) for k, c in clocks.items()}
    rows = [
        ("bare read of 5 .nii.gz files", *per_case["bare"], "s/case"),
        ("preprocess (build_cache)", *per_case["build"], "s/case"),
        ("  preprocess_files (read+all)", *per_case["preprocess_files"], "s/case"),
        ("  of which preprocess_channels", *per_case["preprocess_channels"], "s/case"),
        ("  np.save image + labels", *per_case["write"], "s/case"),
        ("  (load_case + preprocess_case)", *per_case["via_load_case"], "s/case"),
        ("naive loader", *rates["naive"], "slices/s"),
        ("cached SliceDataset", *rates["cached"], "slices/s"),
    ]
    print(f"\n{n} cases from {data}; {args.size}x{args.size}x4 slices; batch {args.batch_size}")
    print(f"{'':32s} {'wall':>10s} {'CPU':>10s}")
    for name, wall, cpu, unit in rows:
        fmt = ",.0f" if unit == "slices/s" else ".3f"
        print(f"{name:32s} {wall:>10{fmt}} {cpu:>10{fmt}}  {unit}")
    speedup = rates["cached"][0] / rates["naive"][0]
    ratio = per_case["build"][0] / per_case["bare"][0]
    print(f"cached warm-up epoch: {rates['warm_up']:,.0f} slices/s (wall)")
    print(
        f"speedup cached/naive {speedup:.0f}x; preprocess/bare read {ratio:.2f}x (wall), "
        f"{per_case['build'][1] / per_case['bare'][1]:.2f}x (CPU); "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    result = {
        "naive_slices_per_s": round(rates["naive"][0], 1),
        "cached_slices_per_s": round(rates["cached"][0], 1),
        "speedup": round(speedup, 1),
        "preprocess_s_per_case": round(per_case["build"][0], 4),
        "bare_read_s_per_case": round(per_case["bare"][0], 4),
        "preprocess_over_bare": round(ratio, 2),
        "cpu": {
            "naive_slices_per_s": round(rates["naive"][1], 1),
            "cached_slices_per_s": round(rates["cached"][1], 1),
            **{f"{k}_s_per_case": round(v[1], 4) for k, v in per_case.items()},
        },
        "wall": {f"{k}_s_per_case": round(v[0], 4) for k, v in per_case.items()},
        "cases": n,
        "size": args.size,
        "batch_size": args.batch_size,
        "data": "synthetic" if args.data is None else str(args.data),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
