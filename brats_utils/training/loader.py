"""Batches of cached slices for Keras (every backend), read from the cache's memory maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brats_utils.conventions import MODALITIES, NUM_CLASSES, channel_indices
from brats_utils.errors import check_choice
from brats_utils.preprocessing.cache import SliceCache, open_cache
from brats_utils.preprocessing.slices import context_positions
from brats_utils.training.augment import AUGMENTATIONS, augment_batch

__all__ = ["SliceDataset", "load_arrays"]

_ONE_HOT_ROWS = np.eye(NUM_CLASSES, dtype=np.float32)


def _check_cases(cache: SliceCache, case_ids: Sequence[str]) -> list[str]:
    if isinstance(case_ids, str) or not case_ids:
        raise ValueError("case_ids must be a non-empty list of cached case ids")
    case_ids = list(case_ids)
    missing = [c for c in case_ids if c not in cache]
    if missing:
        raise ValueError(
            f"{len(missing)} cases are not in the cache {cache.cache_dir}: {missing[:5]}"
        )
    unlabelled = [c for c in case_ids if not cache.has_labels(c)]
    if unlabelled:
        raise ValueError(f"cases cached without labels cannot be loaded: {unlabelled[:5]}")
    return case_ids


class SliceDataset(keras.utils.PyDataset):
    """Batches of cached slices for ``model.fit``: every tumour slice and a random
    ``empty_slice_fraction`` of the others per epoch, drawn with ``seed + k`` for epoch ``k``.

    ``x``: ``(B, size, size, context * len(channels))`` float32, channels in the given order;
    ``y``: ``(B, size, size, 4)`` float32 one-hot classes.
    """

    def __init__(
        self,
        cache: SliceCache | str | Path,
        case_ids: Sequence[str],
        channels: Sequence[str] = MODALITIES,
        batch_size: int = 32,
        *,
        shuffle: bool = True,
        seed: int = 0,
        augment: str | bool = "none",
        empty_slice_fraction: float = 1.0,
        context: int = 1,
        **pydataset_kwargs: Any,
    ):
        super().__init__(**pydataset_kwargs)
        self.cache = cache if isinstance(cache, SliceCache) else open_cache(cache)
        self.case_ids = _check_cases(self.cache, case_ids)
        self.channels = tuple(channels)
        channel_indices(self.channels)  # refuses unknown names
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0.0 <= float(empty_slice_fraction) <= 1.0:
            raise ValueError(f"empty_slice_fraction must lie in [0, 1], got {empty_slice_fraction}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.augment = {False: "none", True: "flips"}.get(augment, augment)
        check_choice("augment", self.augment, AUGMENTATIONS)
        self.empty_slice_fraction = float(empty_slice_fraction)
        if type(context) is not int or context < 1 or context % 2 == 0:  # bool is no int here
            raise ValueError(f"context must be an odd positive integer, got {context!r}")
        self.context = context
        self.size = self.cache.settings.size

        counts = [self.cache.n_slices(c) for c in self.case_ids]
        self._case_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        self._position_of = np.concatenate([np.arange(n, dtype=np.int64) for n in counts])
        starts = np.cumsum([0, *counts[:-1]])
        tumour = np.zeros(len(self._case_of), dtype=bool)
        for start, case_id in zip(starts, self.case_ids, strict=True):
            tumour[start + self.cache.tumour_slices(case_id)] = True
        self._tumour_rows = np.flatnonzero(tumour)
        self._empty_rows = np.flatnonzero(~tumour)
        self._n_empty_kept = round(self.empty_slice_fraction * len(self._empty_rows))
        if len(self._tumour_rows) + self._n_empty_kept == 0:
            raise ValueError(
                f"no slices to load: {len(self.case_ids)} cases have no tumour slice and "
                f"empty_slice_fraction={self.empty_slice_fraction} keeps no empty one"
            )
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Start at ``epoch``: its slices and order."""
        self._start_epoch = int(epoch)
        self._keras_started = False
        self._draw(self._start_epoch)

    def _draw(self, epoch: int) -> None:
        self.epoch = epoch
        self._read = False  # a batch of this draw was read
        self._begun = False  # Keras began an epoch on this draw
        rng = np.random.default_rng(self.seed + epoch)
        empty = self._empty_rows
        if self._n_empty_kept < len(empty):
            empty = np.sort(rng.choice(empty, size=self._n_empty_kept, replace=False))
        rows = np.concatenate([self._tumour_rows, empty])
        self._rows = rng.permutation(rows) if self.shuffle else np.sort(rows)

    def on_epoch_begin(self) -> None:
        """Undo the draw of the ``on_epoch_end`` after TensorFlow's shape probe."""
        if not self._keras_started:
            self._keras_started = True
            if self.epoch != self._start_epoch:
                self._draw(self._start_epoch)
        self._begun = True

    def on_epoch_end(self) -> None:
        """Draw the next epoch if this one was used (a batch was read, or Keras began it).
        Keras on JAX, PyTorch or a TF strategy begins an epoch of its own first."""
        used = self._begun if self._keras_started else self._read
        if used:
            self._draw(self.epoch + 1)

    @property
    def num_slices(self) -> int:
        return len(self._rows)

    def __len__(self) -> int:
        return math.ceil(len(self._rows) / self.batch_size)

    def _batch_rows(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        # Sorted within the batch: case by case, slice by slice, for sequential reads.
        return np.sort(self._rows[index * self.batch_size : (index + 1) * self.batch_size])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._batch_rows(index)
        self._read = True
        cases, positions = self._case_of[rows], self._position_of[rows]
        n, size = len(rows), self.size
        x = np.empty((n, size, size, self.context * len(self.channels)), dtype=np.float32)
        y = np.empty((n, size, size), dtype=np.uint8)
        # rows are sorted: each case's slices are copied from its memory map into one block
        bounds = [0, *(np.flatnonzero(np.diff(cases)) + 1).tolist(), n]
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            case_id, wanted = self.case_ids[cases[start]], positions[start:stop]
            if self.context > 1:  # each wanted slice's neighbours, read once, side by side
                index = context_positions(wanted, self.cache.n_slices(case_id), self.context)
                needed, inverse = np.unique(index, return_inverse=True)
                stacks = self.cache.read(case_id, needed, self.channels)[
                    inverse.reshape(index.shape)
                ]
                x[start:stop] = np.moveaxis(stacks, 1, 3).reshape(stop - start, size, size, -1)
            else:
                self.cache.read(case_id, wanted, self.channels, out=x[start:stop])
            y[start:stop] = self.cache.labels(case_id, wanted)
        if self.augment != "none":
            augment_batch(x, y, np.random.default_rng([self.seed, self.epoch, index]), self.augment)
        return x, np.take(_ONE_HOT_ROWS, y, axis=0)  # a table look-up: ~10x faster than ==


def load_arrays(
    cache: SliceCache | str | Path,
    case_ids: Sequence[str],
    channels: Sequence[str] = MODALITIES,
    *,
    context: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Every cached slice of ``case_ids`` (case by case, in slice order) as one batch."""
    dataset = SliceDataset(cache, case_ids, channels, shuffle=False, context=context)
    dataset.batch_size = dataset.num_slices  # one batch
    return dataset[0]
