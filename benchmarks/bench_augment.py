"""Does the loader still feed training when it augments? Training steps/s of one model fed by
``SliceDataset`` with each ``--augment`` mode, as a ratio of the same model fed from arrays
already in memory (no reading, no augmentation), measured in one run.

Arms alternate (in-memory, then each mode, ``--repeats`` times), so a machine busy with other
work slows every arm alike; the first ``--skip`` steps of each fit (tracing, warm-up) are not
timed. The issue's target: ratio >= 0.9 for ``nnunet``.

Usage (the figures in docs/real_data_results.md)::

    python benchmarks/bench_augment.py CACHE_DIR --size-note "64 x 64" --base-filters 16 \\
        --context 3 --batch-size 16

The last line printed is one JSON object with every figure and the settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache", type=Path, help="slice cache (brats preprocess --out)")
    parser.add_argument("--experiment", default="early2")
    parser.add_argument("--context", type=int, default=3, help="slices per modality (2.5D)")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per arm")
    parser.add_argument("--skip", type=int, default=3, help="untimed first steps of each fit")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="loader threads (brats train's)")
    parser.add_argument("--modes", nargs="+", default=["flips", "nnunet"])
    parser.add_argument("--size-note", default="", help="free text kept in the JSON line")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import keras
    import numpy as np

    from brats_utils.model.experiments import get_experiment
    from brats_utils.model.unet import build_model
    from brats_utils.preprocessing.cache import open_cache
    from brats_utils.training.fit import compile_model
    from brats_utils.training.loader import SliceDataset

    class StepTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    cache = open_cache(args.cache)
    experiment = get_experiment(args.experiment)
    cases = sorted(cache.case_ids)
    n = (args.steps + args.skip) * args.batch_size
    common = dict(channels=experiment.channels, batch_size=args.batch_size, context=args.context)
    # the in-memory arm: the first n slices of a shuffled epoch, as arrays
    dataset = SliceDataset(cache, cases, seed=0, empty_slice_fraction=0.3, **common)
    batches = [dataset[i] for i in range(min(len(dataset), n // args.batch_size))]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    size = x.shape[1]
    model = build_model(experiment, size, base_filters=args.base_filters, head="regions",
                        context=args.context)  # fmt: skip
    compile_model(model, "dice_ce")
    timer = StepTimes()

    def steps_per_s(data, **fit) -> float:
        model.fit(data, epochs=1, verbose=0, callbacks=[timer], **fit)
        ends = timer.ends[args.skip :]
        return (len(ends) - 1) / (ends[-1] - ends[0])

    figures = {"in-memory": []} | {m: [] for m in args.modes}
    for _ in range(args.repeats):
        figures["in-memory"].append(steps_per_s(x, y=y, batch_size=args.batch_size, shuffle=True))
        for mode in args.modes:
            loader = SliceDataset(cache, cases, seed=1, augment=mode, empty_slice_fraction=0.3,
                                  workers=args.workers, **common)  # fmt: skip
            loader._rows = loader._rows[:n]  # the same number of steps as the in-memory arm
            figures[mode].append(steps_per_s(loader))
    memory = float(np.median(figures["in-memory"]))
    result = {"size": size, "slices_per_step": args.batch_size, **vars(args)}
    result["cache"] = str(args.cache)
    for arm, values in figures.items():
        median = float(np.median(values))
        result[arm] = {"steps_per_s": [round(v, 3) for v in values], "ratio": median / memory}
        print(f"{arm:10s} {median:7.2f} steps/s  ratio to in-memory {median / memory:.3f}")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
