"""Geometry of synthetic cases in reference mm (of a 240 x 240 x 155 volume at 1 mm)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from threadpoolctl import threadpool_limits

from brats_utils.conventions import VOLUME_SHAPE

__all__ = [
    "OUTSIDE",
    "CSF",
    "GREY_MATTER",
    "WHITE_MATTER",
    "DEEP_GREY",
    "Box",
    "smooth_noise",
    "one_blas_thread",
    "brain_box",
    "brain_tissues",
    "TumourPlan",
    "plan_tumour",
    "tumour_fields",
]

OUTSIDE, CSF, GREY_MATTER, WHITE_MATTER, DEEP_GREY = 0, 1, 2, 3, 4

#: Glioma kinds: necrotic core + enhancing rim, solid enhancing core (no necrosis), or a
#: non-enhancing core (no enhancement, label 1 only), each with edema around it.
_TUMOUR_KINDS: tuple[str, ...] = ("necrotic", "solid_enhancing", "non_enhancing")
_KIND_PROBABILITIES = (0.7, 0.15, 0.15)

# Nominal brain ellipsoid in reference mm (matches the real sample's brain extent:
# x 47..190, y 40..215, z 0..142, widest at z 75, narrowing fast towards z 0).
_BRAIN_CENTRE = np.array([118.5, 127.5, 75.0])
#: Half-widths along x, y, z above the centre and z below the centre.
_BRAIN_RADII = np.array([68.0, 84.5, 66.0, 77.0])


@dataclass(frozen=True)
class Box:
    """A block of voxels: ``slices`` into the full volume, ``coords`` (float32, mm) per axis."""

    slices: tuple[slice, slice, slice]
    coords: tuple[np.ndarray, np.ndarray, np.ndarray]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(c) for c in self.coords)  # type: ignore[return-value]

    def grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable coordinate arrays, shapes (X,1,1), (1,Y,1), (1,1,Z)."""
        x, y, z = self.coords
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def sub_box(self, low_mm: np.ndarray, high_mm: np.ndarray) -> tuple[Box, tuple[slice, ...]]:
        """``(box, local)``: the part between two corners (mm), and its slices in this box."""
        local, full, coords = [], [], []
        for axis in range(3):
            c = self.coords[axis]
            start = int(np.searchsorted(c, low_mm[axis]))
            stop = max(int(np.searchsorted(c, high_mm[axis], side="right")), start + 1)
            stop = min(stop, len(c))
            start = min(start, stop - 1)
            local.append(slice(start, stop))
            offset = self.slices[axis].start
            full.append(slice(offset + start, offset + stop))
            coords.append(c[start:stop])
        return Box(tuple(full), tuple(coords)), tuple(local)  # type: ignore[arg-type]


def _axis_coords(shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Voxel centres of each axis in reference mm."""
    return [
        ((np.arange(n, dtype=np.float32) + 0.5) * (full / n) - 0.5).astype(np.float32)
        for n, full in zip(shape, VOLUME_SHAPE, strict=True)
    ]


def brain_box(shape: tuple[int, int, int]) -> Box:
    """Box of every voxel the brain may occupy in a volume of ``shape``."""
    low = _BRAIN_CENTRE - 1.2 * _BRAIN_RADII[[0, 1, 3]]
    high = _BRAIN_CENTRE + 1.2 * _BRAIN_RADII[:3]
    whole = Box(tuple(slice(0, n) for n in shape), tuple(_axis_coords(shape)))  # type: ignore[arg-type]
    box, _ = whole.sub_box(low, high)
    return box


def _basis(coords: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Gaussian interpolation weights (len(coords), n_control), rows of unit L2 norm."""
    low, high = float(coords[0]) - 2 * spacing_mm, float(coords[-1]) + 2 * spacing_mm
    n_control = max(int(np.ceil((high - low) / spacing_mm)) + 1, 2)
    centres = np.linspace(low, high, n_control, dtype=np.float32)
    weights = np.exp(-0.5 * ((coords[:, None] - centres[None, :]) / spacing_mm) ** 2)
    weights /= np.sqrt((weights**2).sum(axis=1, keepdims=True))
    return weights.astype(np.float32)


def smooth_noise(rng: np.random.Generator, box: Box, spacing_mm: float) -> np.ndarray:
    """A smooth float32 random field over ``box``, mean 0, sd about 1, features ~``spacing_mm``."""
    ax, ay, az = (_basis(c, spacing_mm) for c in box.coords)
    coeffs = rng.standard_normal((ax.shape[1], ay.shape[1], az.shape[1]), dtype=np.float32)
    field = np.tensordot(ax, coeffs, axes=(1, 0))  # (X, cy, cz)
    field = np.matmul(ay[None], field)  # (X, Y, cz)
    return np.ascontiguousarray(field @ az.T)  # (X, Y, Z)


@contextlib.contextmanager
def one_blas_thread():
    """One BLAS thread in the block: :func:`smooth_noise` ran 2-5 times slower with more."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def brain_tissues(rng: np.random.Generator, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """A skull-stripped brain: ``(tissue, depth)``, uint8 codes and float32 mm deep."""
    x, y, z = box.grid()
    size = float(np.exp(rng.normal(0.0, 0.03)))
    rx, ry, rz_top, rz_bottom = (_BRAIN_RADII * size * np.exp(rng.normal(0.0, 0.03, 4))).tolist()
    cx, cy, cz = (_BRAIN_CENTRE + rng.normal(0.0, 2.0, 3)).tolist()
    dx = (x - cx) / rx
    dy = (y - cy) / ry
    dz = np.where(z >= cz, (z - cz) / rz_top, (z - cz) / rz_bottom)
    # Narrower towards the base (temporal lobes, brain stem) and slightly at the front.
    taper = (1.0 - 0.3 * np.clip(-dz, 0.0, 1.0)) * (1.0 + 0.06 * dy)
    radius = np.sqrt((dx * dx + dy * dy) / (taper * taper) + dz * dz)
    radius *= 1.0 + 0.035 * smooth_noise(rng, box, 30.0)
    depth = (1.0 - radius) * ((rx + ry + rz_top) / 3.0)
    inside = depth > 0

    tissue = np.where(inside, WHITE_MATTER, OUTSIDE).astype(np.uint8)
    cortex = 3.0 + 0.8 * smooth_noise(rng, box, 12.0)
    sulcus_field = np.abs(smooth_noise(rng, box, 3.0))
    sulcal_depth = 17.0 + 5.0 * smooth_noise(rng, box, 25.0)
    in_sulcus_zone = inside & (depth < sulcal_depth)
    tissue[inside & (depth < cortex)] = GREY_MATTER
    tissue[in_sulcus_zone & (sulcus_field < 0.55)] = GREY_MATTER
    tissue[in_sulcus_zone & (sulcus_field < 0.14)] = CSF
    tissue[inside & (depth < 1.2)] = CSF  # thin CSF layer over the cortex

    near_mid = np.abs(x - cx - 2.0 * smooth_noise(rng, box, 40.0))
    fissure = inside & (depth < 38.0 + 3.0 * dz) & (dz > -0.3)
    tissue[fissure & (near_mid < 4.5)] = GREY_MATTER
    tissue[fissure & (near_mid < 1.5)] = CSF

    # Deep grey nuclei (thalamus / basal ganglia) and lateral ventricles, in a central box.
    centre = np.array([cx, cy, cz])
    deep_box, local = box.sub_box(centre - 45.0, centre + 45.0)
    x, y, z = deep_box.grid()
    deep_tissue = tissue[local]  # a view: edits land in ``tissue``
    for side in (-1.0, 1.0):
        nucleus = (
            ((x - cx - side * 15.0) / 11.0) ** 2
            + ((y - cy + 2.0) / 17.0) ** 2
            + ((z - cz + 2.0) / 11.0) ** 2
        )
        deep_tissue[nucleus < 1.0] = DEEP_GREY
    vent_scale = float(np.exp(rng.normal(0.0, 0.25)))
    vent_noise = 0.25 * smooth_noise(rng, deep_box, 10.0)
    for side in (-1.0, 1.0):
        # Lateral ventricles: long, curved down at both ends, width varying between cases.
        curve = 6.0 * ((y - cy - 5.0) / 30.0) ** 2
        ventricle = (
            ((x - cx - side * (7.0 + 2.0 * vent_scale)) / (6.0 * vent_scale)) ** 2
            + ((y - cy - 5.0) / 30.0) ** 2
            + ((z - cz - 14.0 + curve) / (8.0 * vent_scale)) ** 2
        )
        deep_tissue[ventricle + vent_noise < 1.0] = CSF
    return tissue, depth.astype(np.float32)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of a boolean mask."""
    components, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))


@dataclass(frozen=True)
class TumourPlan:
    """Random choices that define one glioma; lengths in reference mm, ``stretch`` per axis."""

    kind: str
    centre: np.ndarray
    edema_radius: float
    core_radius: float
    necrosis_radius: float
    stretch: np.ndarray


def plan_tumour(rng: np.random.Generator, depth: np.ndarray, box: Box) -> TumourPlan:
    """Draw a glioma's kind, size and a centre deep enough inside the brain (``depth`` map)."""
    kind = _TUMOUR_KINDS[int(rng.choice(len(_TUMOUR_KINDS), p=_KIND_PROBABILITIES))]
    edema_radius = float(rng.uniform(14.0, 34.0))
    core_radius = edema_radius * float(rng.uniform(0.55, 0.9))
    necrosis_radius = core_radius * float(rng.uniform(0.5, 0.85)) if kind == "necrotic" else 0.0
    stretch = np.exp(rng.normal(0.0, 0.15, 3))
    # Centre: a voxel of one hemisphere, at least the core radius below the brain surface and
    # mostly clear of the midline.
    side = float(rng.choice([-1.0, 1.0]))
    lateral = side * (box.coords[0][::2] - _BRAIN_CENTRE[0]) > 0.4 * core_radius + 3.0
    allowed = (depth[::2, ::2, ::2] > core_radius + 6.0) & lateral[:, None, None]
    candidates = np.argwhere(allowed) * 2
    if len(candidates) == 0:  # tiny brains: anywhere deep enough
        candidates = np.argwhere(depth >= depth.max() * 0.5)
    voxel = candidates[int(rng.integers(len(candidates)))]
    centre = np.array([box.coords[a][min(voxel[a], box.shape[a] - 1)] for a in range(3)])
    return TumourPlan(kind, centre, edema_radius, core_radius, necrosis_radius, stretch)


def tumour_fields(
    rng: np.random.Generator, plan: TumourPlan, box: Box, tissue: np.ndarray
) -> tuple[Box, tuple[slice, ...], np.ndarray, np.ndarray]:
    """Rasterise the glioma inside the brain ``box``: ``(tbox, local, classes, edema_weight)``,
    its box, its slices in ``box``, uint8 classes and a float32 0..1 edema weight."""
    reach = plan.edema_radius * 1.8 * plan.stretch.max()
    tbox, local = box.sub_box(plan.centre - reach, plan.centre + reach)
    x, y, z = tbox.grid()
    cx, cy, cz = plan.centre
    sx, sy, sz = plan.stretch
    distance = np.sqrt(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2 + ((z - cz) / sz) ** 2)
    lobes = smooth_noise(rng, tbox, max(plan.core_radius * 0.6, 4.0))
    fingers = smooth_noise(rng, tbox, max(plan.edema_radius * 0.35, 4.0))
    core = distance / plan.core_radius * (1.0 + 0.22 * lobes)
    edema = distance / plan.edema_radius * (1.0 + 0.25 * fingers + 0.1 * lobes)
    local_tissue = tissue[local]
    reach_factor = np.where(local_tissue == WHITE_MATTER, 1.0, 0.8)
    classes = np.zeros(tbox.shape, dtype=np.uint8)
    inside_brain = local_tissue != OUTSIDE
    classes[(edema < reach_factor) & inside_brain & (local_tissue != CSF)] = 2
    in_core = (core < 1.0) & inside_brain
    if plan.kind == "non_enhancing":
        classes[in_core] = 1
    else:
        classes[in_core] = 3
        if plan.kind == "necrotic":
            necrosis = distance / plan.necrosis_radius * (1.0 + 0.25 * lobes)
            classes[in_core & (necrosis < 1.0)] = 1
    classes[~_largest_component(classes > 0)] = 0
    edema_weight = np.clip((reach_factor - edema) / 0.35, 0.0, 1.0) * 0.5 + 0.5
    return tbox, local, classes, edema_weight.astype(np.float32)
