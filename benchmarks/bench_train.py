"""Benchmark: training throughput fed by SliceDataset vs the same slices already in memory.

Writes a few synthetic cases to a temporary folder, caches them with ``build_cache`` and
trains the same compiled model for a few epochs twice: once with ``model.fit(x, y)`` on the
slices held in memory (the ceiling: no I/O at all), once with ``model.fit(SliceDataset)``
reading them from the cache's memory maps. Both runs are warmed up first (graph tracing and
compilation are not timed); timed epochs alternate between the two and the fastest epoch of
each is kept (the machine may be shared).

Usage::

    python benchmarks/bench_train.py                      # 8 cases, 64 x 64, early2
    python benchmarks/bench_train.py --size 128 --epochs 3 --workers 2

The last line printed is one JSON object with ``in_memory_slices_per_s``,
``loader_slices_per_s``, ``ratio`` (loader / in memory; target >= 0.9), ``experiment``,
``size``, ``backend`` and the settings and machine.
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

from brats_utils.data.synth import write_synthetic_dataset
from brats_utils.model.experiments import EXPERIMENTS, get_experiment
from brats_utils.model.unet import build_model
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.fit import compile_model
from brats_utils.training.loader import SliceDataset, load_arrays


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch, in seconds."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8, help="synthetic cases (default 8)")
    parser.add_argument("--size", type=int, default=64, help="slice size (default 64)")
    parser.add_argument(
        "--volume",
        type=int,
        nargs=3,
        default=(120, 120, 100),
        metavar=("X", "Y", "Z"),
        help="synthetic volume shape; every axial slice is cached (default 120 120 100: "
        "100 slices per case like the baseline's 22:122; the cache layout, hence the loader's "
        "cost, depends only on slices x size)",
    )
    parser.add_argument("--experiment", choices=sorted(EXPERIMENTS), default="early2")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--base-filters", type=int, default=16, help="default 16 (baseline: 32)")
    parser.add_argument("--workers", type=int, default=1, help="PyDataset worker threads")
    parser.add_argument("--max-queue-size", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> dict:
    args = parse_args()
    experiment = get_experiment(args.experiment)
    keras.utils.set_random_seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        data, cache = Path(tmp) / "data", Path(tmp) / "cache"
        started = time.perf_counter()
        write_synthetic_dataset(data, args.cases, seed=args.seed, shape=tuple(args.volume))
        settings = PreprocessSettings(size=args.size, slice_start=0, slice_stop=None)
        build_cache(data, cache, settings, expected_shape=None)
        prepare_seconds = time.perf_counter() - started
        case_ids = sorted(p.name for p in data.iterdir() if p.is_dir())

        x, y = load_arrays(cache, case_ids, experiment.channels)
        dataset = SliceDataset(
            cache,
            case_ids,
            experiment.channels,
            args.batch_size,
            shuffle=True,
            seed=args.seed,
            workers=args.workers,
            max_queue_size=args.max_queue_size,
        )
        if dataset.num_slices != len(x):
            raise RuntimeError(f"loader has {dataset.num_slices} slices, memory {len(x)}")
        model = build_model(experiment, args.size, base_filters=args.base_filters)
        compile_model(model)
        # Warm-up: trace/compile the train step for a full and the last partial batch, on
        # both kinds of input, so that no timed epoch includes tracing.
        remainder = len(x) % args.batch_size or args.batch_size
        warm = args.batch_size + remainder
        model.fit(x[:warm], y[:warm], batch_size=args.batch_size, epochs=1, verbose=0)
        model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)

        # Timed epochs, in-memory and loader interleaved so that a change in the load of a
        # shared machine hits both alike; the fastest epoch of each is kept.
        memory_timer, loader_timer = EpochTimer(), EpochTimer()
        for _ in range(args.epochs):
            model.fit(
                x,
                y,
                batch_size=args.batch_size,
                epochs=1,
                shuffle=True,
                verbose=0,
                callbacks=[memory_timer],
            )
            model.fit(dataset, epochs=1, verbose=0, callbacks=[loader_timer])

    in_memory = len(x) / min(memory_timer.seconds)
    loader = len(x) / min(loader_timer.seconds)
    result = {
        "in_memory_slices_per_s": round(in_memory, 2),
        "loader_slices_per_s": round(loader, 2),
        "ratio": round(loader / in_memory, 3),
        "experiment": experiment.name,
        "size": args.size,
        "backend": keras.backend.backend(),
        "slices_per_epoch": len(x),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "base_filters": args.base_filters,
        "workers": args.workers,
        "in_memory_epoch_s": [round(s, 2) for s in memory_timer.seconds],
        "loader_epoch_s": [round(s, 2) for s in loader_timer.seconds],
        "prepare_s": round(prepare_seconds, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
