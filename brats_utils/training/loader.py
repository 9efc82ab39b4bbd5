"""Keras data loading from the slice cache: :class:`SliceDataset` and :func:`load_arrays`.

Batches are gathered from the cache's memory maps by fancy indexing, so memory stays flat
however many cases the data set has: only the slices of the current batch are read.
Pure numpy inside; Keras is only needed for the ``keras.utils.PyDataset`` base class, so
the loader works with every Keras backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brats_utils.conventions import MODALITIES, NUM_CLASSES, channel_indices
from brats_utils.preprocessing.cache import SliceCache, open_cache
from brats_utils.preprocessing.slices import stack_context

__all__ = ["SliceDataset", "load_arrays"]

_ONE_HOT_ROWS = np.eye(NUM_CLASSES, dtype=np.float32)


def _as_cache(cache: SliceCache | str | Path) -> SliceCache:
    return cache if isinstance(cache, SliceCache) else open_cache(cache)


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


def _one_hot(labels: np.ndarray) -> np.ndarray:
    """``(...,)`` uint8 classes -> ``(..., NUM_CLASSES)`` float32 one-hot."""
    return np.take(_ONE_HOT_ROWS, labels, axis=0)  # a table look-up: ~10x faster than ==


class SliceDataset(keras.utils.PyDataset):
    """Batches of cached slices for ``model.fit``: ``x`` images and ``y`` labels.

    Each epoch keeps every tumour slice and a random ``empty_slice_fraction`` of the
    tumour-free ones (drawn again every epoch, always the same count), and shuffles them if
    ``shuffle``. Epoch ``k`` uses the random seed ``seed + k``; :meth:`on_epoch_end`
    advances ``k`` (:meth:`set_epoch` sets it), so a run is reproducible under a seed.
    Augmentation (random left-right and up-down flips of each slice) is seeded by
    ``(seed, epoch, batch index)``, so it does not depend on the order in which Keras
    workers ask for batches.

    Args:
        cache: an open :class:`~brats_utils.preprocessing.cache.SliceCache` or its folder.
        case_ids: cases to draw slices from; each must be cached with labels.
        channels: modality names, in the order of ``x``'s channels (default all four).
        batch_size: slices per batch; the last batch of an epoch may be smaller.
        shuffle: shuffle the slices every epoch (otherwise case by case, slice by slice).
        seed: random seed of epoch 0.
        augment: random flips of training slices (off by default).
        empty_slice_fraction: fraction in [0, 1] of tumour-free slices kept each epoch.
        one_hot: ``y`` one-hot float32 (default) or uint8 classes.
        context: 2.5D: each ``x`` holds this many neighbouring cached slices of every channel
            (:func:`~brats_utils.preprocessing.slices.stack_context`, the function inference
            uses); ``y`` is the centre slice's. 1 (default): the slice alone.
        **pydataset_kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Batches:
        ``x``: ``(B, size, size, context * len(channels))`` float32, channels in the given
        order (slice by slice for ``context`` > 1);
        ``y``: ``(B, size, size, 4)`` float32 one-hot, or ``(B, size, size)`` uint8 classes.
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
        augment: bool = False,
        empty_slice_fraction: float = 1.0,
        one_hot: bool = True,
        context: int = 1,
        **pydataset_kwargs: Any,
    ):
        super().__init__(**pydataset_kwargs)
        self.cache = _as_cache(cache)
        self.case_ids = _check_cases(self.cache, case_ids)
        self.channels = tuple(channels)
        self._channel_index = channel_indices(self.channels)
        self._all_channels = self._channel_index == list(range(len(MODALITIES)))
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0.0 <= float(empty_slice_fraction) <= 1.0:
            raise ValueError(f"empty_slice_fraction must lie in [0, 1], got {empty_slice_fraction}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.empty_slice_fraction = float(empty_slice_fraction)
        self.one_hot = bool(one_hot)
        if (
            isinstance(context, bool)
            or not isinstance(context, int)
            or context < 1
            or context % 2 == 0
        ):
            raise ValueError(f"context must be an odd positive integer, got {context!r}")
        self.context = context
        self.size = self.cache.settings.size

        # One row per cached slice: which case (index into case_ids) and which position.
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

    # --- epochs --------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Start at ``epoch``: its slices and order (e.g. to resume a run at epoch ``k``)."""
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
        """Called by Keras when an epoch starts.

        Before its first epoch, every ``fit`` (``evaluate``, ``predict``) may read a couple of
        batches to learn their shapes (TensorFlow) and then calls :meth:`on_epoch_end`. The
        first call here after construction or :meth:`set_epoch` undoes a draw made by such a
        call, so the first epoch Keras trains is the start epoch (0, or the one given to
        :meth:`set_epoch`).
        """
        if not self._keras_started:
            self._keras_started = True
            if self.epoch != self._start_epoch:
                self._draw(self._start_epoch)
        self._begun = True

    def on_epoch_end(self) -> None:
        """Advance to the next epoch (new empty-slice draw, new order) if this one was used.

        Until Keras has called :meth:`on_epoch_begin`, used means a batch was read (a loop
        over the batches by hand, then ``on_epoch_end()``). From then on, only an epoch
        Keras began counts: the call each later ``fit`` makes before its first epoch changes
        nothing, so ``fit(epochs=1)`` then ``fit(epochs=2)`` trains epochs 0, 1, 2.

        Known limit: when Keras builds a model from the data before its first epoch (the
        first ``fit`` of a model not built yet on the JAX and PyTorch backends, or under a
        TensorFlow distribution strategy), it begins an epoch of its own and reads one batch
        (indistinguishable here from a one-batch epoch), so that ``fit``'s epochs are drawn
        from the start epoch + 1 on. Runs stay reproducible under a seed.
        """
        used = self._begun if self._keras_started else self._read
        if used:
            self._draw(self.epoch + 1)

    @property
    def num_slices(self) -> int:
        """Slices per epoch (tumour slices plus the kept tumour-free ones)."""
        return len(self._rows)

    def __len__(self) -> int:
        return math.ceil(len(self._rows) / self.batch_size)

    def batch_slices(self, index: int) -> list[tuple[str, int]]:
        """``(case_id, z)`` of each slice of batch ``index`` this epoch (z: source index)."""
        rows = self._batch_rows(index)
        out = []
        for case, position in zip(self._case_of[rows], self._position_of[rows], strict=True):
            case_id = self.case_ids[case]
            out.append((case_id, int(self.cache.slice_indices(case_id)[position])))
        return out

    # --- batches -------------------------------------------------------------------------

    def _batch_rows(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        # Sorted within the batch: case by case, slice by slice, for sequential reads.
        return np.sort(self._rows[index * self.batch_size : (index + 1) * self.batch_size])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._batch_rows(index)
        self._read = True
        x, y = _gather(
            self.cache,
            self.case_ids,
            self._case_of[rows],
            self._position_of[rows],
            self._channel_index,
            self._all_channels,
            self.context,
        )
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            flips = rng.random((len(rows), 2)) < 0.5
            for i, (flip_rows, flip_cols) in enumerate(flips):
                if flip_rows:
                    x[i], y[i] = x[i, ::-1].copy(), y[i, ::-1].copy()
                if flip_cols:
                    x[i], y[i] = x[i, :, ::-1].copy(), y[i, :, ::-1].copy()
        return x, (_one_hot(y) if self.one_hot else y)

    @classmethod
    def from_split(
        cls,
        cache: SliceCache | str | Path,
        split: Mapping[str, str] | str | Path,
        subset: str,
        **kwargs: Any,
    ) -> SliceDataset:
        """The dataset of one subset of a split.

        Args:
            cache: the slice cache or its folder.
            split: ``{case_id: subset}`` or a split CSV (:func:`brats_utils.data.split.load_split`).
            subset: ``"train"``, ``"validation"`` or ``"test"``.
            **kwargs: passed to :class:`SliceDataset`.

        Raises:
            ValueError: if no case of the split is in ``subset``, or one is not cached.
        """
        if not isinstance(split, Mapping):
            from brats_utils.data.split import load_split

            split = load_split(split)
        case_ids = sorted(c for c, s in split.items() if s == subset)
        if not case_ids:
            raise ValueError(
                f"the split has no {subset!r} cases (found {sorted(set(split.values()))})"
            )
        return cls(cache, case_ids, **kwargs)


def _gather(
    cache: SliceCache,
    case_ids: Sequence[str],
    cases: np.ndarray,
    positions: np.ndarray,
    channel_index: list[int],
    all_channels: bool,
    context: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Read the slices ``(cases[i], positions[i])`` into ``(x, y)`` (y as uint8 classes).

    ``cases`` must be sorted (slices of one case side by side): each case's slices are then
    copied straight from its memory map into one block of the output. With ``context`` > 1
    each ``x`` is the 2.5D stack around the slice (:func:`stack_context`).
    """
    size = cache.settings.size
    x = np.empty((len(cases), size, size, context * len(channel_index)), dtype=np.float32)
    y = np.empty((len(cases), size, size), dtype=np.uint8)
    bounds = [0, *(np.flatnonzero(np.diff(cases)) + 1).tolist(), len(cases)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        case_id = case_ids[cases[start]]
        wanted = positions[start:stop]
        images = cache.images(case_id)
        if context > 1:
            x[start:stop] = stack_context(images, wanted, context, channel_index)
        elif all_channels:
            np.take(images, wanted, axis=0, out=x[start:stop], mode="clip")
        else:
            x[start:stop] = images[wanted][..., channel_index]
        np.take(cache.labels(case_id), wanted, axis=0, out=y[start:stop], mode="clip")
    return x, y


def load_arrays(
    cache: SliceCache | str | Path,
    case_ids: Sequence[str],
    channels: Sequence[str] = MODALITIES,
    *,
    one_hot: bool = True,
    context: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Every cached slice of ``case_ids`` in memory (small evaluations, benchmarks).

    Args:
        cache: the slice cache or its folder.
        case_ids: cases, each cached with labels; slices come case by case, in slice order.
        channels: modality names in the order of ``x``'s channels.
        one_hot: ``y`` one-hot float32 (default, like :class:`SliceDataset`) or uint8.
        context: 2.5D stacks of this many slices (as :class:`SliceDataset`).

    Returns:
        ``x`` ``(N, size, size, context * len(channels))`` float32 and ``y`` ``(N, size, size, 4)``
        float32 one-hot or ``(N, size, size)`` uint8, N the total number of slices.
    """
    cache = _as_cache(cache)
    case_ids = _check_cases(cache, case_ids)
    index = channel_indices(channels)
    counts = [cache.n_slices(c) for c in case_ids]
    cases = np.repeat(np.arange(len(case_ids)), counts)
    positions = np.concatenate([np.arange(n) for n in counts])
    every = index == list(range(len(MODALITIES)))
    x, y = _gather(cache, case_ids, cases, positions, index, every, context)
    return x, (_one_hot(y) if one_hot else y)
