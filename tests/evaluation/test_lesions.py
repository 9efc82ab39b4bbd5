"""Lesion-wise Dice and HD95 (BraTS 2023): hand-built volumes with literal answers, and
agreement with an independent implementation on perturbed real segmentations."""

from __future__ import annotations

import numpy as np
import pytest

from brats_utils.evaluation.lesions import LESION_HD95_MAX_MM, LesionRules, lesion_scores
from brats_utils.evaluation.surface import hd95

SHAPE = (40, 40, 20)
ONE_MM = (1.0, 1.0, 1.0)


def _cube(corner, size=4, shape=SHAPE) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    x, y, z = corner
    mask[x : x + size, y : y + size, z : z + size] = True
    return mask


A, B = _cube((2, 2, 2)), _cube((25, 25, 10))  # two 64 mm^3 lesions far apart


def test_two_lesions_one_missed():
    scores = lesion_scores(A.copy(), A | B, ONE_MM)
    assert (scores.tp, scores.fp, scores.fn) == (1, 0, 1)
    assert scores.dice == pytest.approx(0.5)  # (1 + 0) / 2
    assert scores.hd95 == pytest.approx(LESION_HD95_MAX_MM / 2)  # (0 + 374) / 2


def test_a_false_positive_speck():
    speck = np.zeros(SHAPE, dtype=bool)
    speck[35, 35, 18] = True
    scores = lesion_scores(A | speck, A, ONE_MM)
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 0)
    assert scores.dice == pytest.approx(0.5) and scores.hd95 == pytest.approx(187.0)


def test_two_truth_components_merged_by_dilation():
    near = _cube((8, 2, 2))  # a 2-voxel gap from A along x: one lesion after dilation
    truth = A | near
    scores = lesion_scores(A.copy(), truth, ONE_MM, LesionRules(dilation=3))
    assert (scores.tp, scores.fp, scores.fn) == (1, 0, 0)
    assert scores.dice == pytest.approx(2 * 64 / (64 + 128))  # the lesion is both cubes
    # Without dilation they are two lesions, one of them missed.
    separate = lesion_scores(A.copy(), truth, ONE_MM, LesionRules(dilation=0))
    assert (separate.tp, separate.fp, separate.fn) == (1, 0, 1)
    assert separate.dice == pytest.approx(0.5)


def test_a_prediction_touching_only_the_dilated_lesion_is_matched():
    beside = _cube((7, 2, 2), size=1)  # 1 voxel, 1 voxel away from A: inside A's dilation
    scores = lesion_scores(beside, A, ONE_MM)
    assert (scores.tp, scores.fp, scores.fn) == (1, 0, 0)
    assert scores.dice == 0.0  # matched, but no overlap with the undilated lesion
    assert 0 < scores.hd95 < 10


def test_a_lesion_under_the_volume_threshold_is_not_scored_nor_its_match_a_false_positive():
    small = _cube((2, 2, 2), size=3)  # 27 mm^3 <= 50
    scores = lesion_scores(small.copy(), small, ONE_MM, LesionRules(min_volume=50))
    assert (scores.dice, scores.hd95, scores.tp, scores.fp, scores.fn) == (1.0, 0.0, 0, 0, 0)
    # With anisotropic voxels the same 27 voxels are 81 mm^3: scored.
    scored = lesion_scores(small.copy(), small, (1.0, 1.0, 3.0), LesionRules(min_volume=50))
    assert (scored.tp, scored.dice) == (1, 1.0)


def test_empty_masks():
    empty = np.zeros(SHAPE, dtype=bool)
    assert lesion_scores(empty, empty, ONE_MM).dice == 1.0
    assert lesion_scores(empty, empty, ONE_MM).hd95 == 0.0
    only_pred = lesion_scores(A | B, empty, ONE_MM)
    assert (only_pred.dice, only_pred.hd95, only_pred.fp) == (0.0, LESION_HD95_MAX_MM, 2)
    only_truth = lesion_scores(empty, A, ONE_MM)
    assert (only_truth.dice, only_truth.hd95, only_truth.fn) == (0.0, LESION_HD95_MAX_MM, 1)


def test_hd95_variants():
    shifted = np.roll(A, 1, axis=0) | _cube((2, 2, 5), size=2)
    pooled = hd95(shifted, A, ONE_MM, variant="pooled")
    directed = hd95(shifted, A, ONE_MM, variant="max_directed")
    assert 0 < pooled <= directed
    assert lesion_scores(shifted, A, ONE_MM).hd95 == pytest.approx(directed)
    assert lesion_scores(
        shifted, A, ONE_MM, LesionRules(hd95_variant="pooled")
    ).hd95 == pytest.approx(pooled)
    with pytest.raises(ValueError, match="variant must be one of"):
        hd95(A, A, ONE_MM, variant="mean")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dilation": -1}, "dilation"),
        ({"min_volume": -1}, "min_volume"),
        ({"hd95_variant": "x"}, "hd95"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LesionRules(**kwargs)


# --- an independent implementation, for real segmentations ----------------------------------


def _independent_lesion_scores(pred, ref, spacing, dilation=3, min_volume=50.0):
    """The 2023 rules written again the plain way: cc3d components on the full volume, no
    cropping, surface-to-surface distances by a k-d tree instead of distance transforms."""
    import cc3d
    from scipy import ndimage
    from scipy.spatial import cKDTree

    def surface_points(mask):
        eroded = ndimage.binary_erosion(mask, ndimage.generate_binary_structure(3, 1))
        return np.argwhere(mask & ~eroded) * np.asarray(spacing)

    def directed_max_hd95(a, b):
        pa, pb = surface_points(a), surface_points(b)
        d_ab = cKDTree(pb).query(pa)[0]
        d_ba = cKDTree(pa).query(pb)[0]
        return max(np.percentile(d_ab, 95), np.percentile(d_ba, 95))

    pred_cc = cc3d.connected_components(pred.astype(np.uint8), connectivity=26)
    dilated = ndimage.binary_dilation(ref, ndimage.generate_binary_structure(3, 2), dilation)
    dilated_cc = cc3d.connected_components(dilated.astype(np.uint8), connectivity=26)
    results, touched = [], set()
    for k in range(1, int(dilated_cc.max()) + 1):
        lesion = (dilated_cc == k) & ref
        hits = set(np.unique(pred_cc[dilated_cc == k]).tolist()) - {0}
        touched |= hits
        if lesion.sum() * np.prod(spacing) <= min_volume:
            continue
        if not hits:
            results.append((0.0, 374.0, "fn"))
            continue
        predicted = np.isin(pred_cc, list(hits))
        dice = 2 * (predicted & lesion).sum() / (predicted.sum() + lesion.sum())
        results.append((dice, directed_max_hd95(predicted, lesion), "tp"))
    fp = int(pred_cc.max()) - len(touched)
    n = len(results) + fp
    if n == 0:
        return 1.0, 0.0, 0, 0, 0
    dice = sum(r[0] for r in results) / n
    hd = (sum(r[1] for r in results) + 374.0 * fp) / n
    tp = sum(r[2] == "tp" for r in results)
    return dice, hd, tp, fp, len(results) - tp


def _perturbations(seg: np.ndarray, rng) -> dict[str, np.ndarray]:
    """Predictions a real model might make: shifted, eroded, dilated, specks added, a part lost."""
    from scipy import ndimage

    specks = np.zeros_like(seg)
    for _ in range(6):
        x, y, z = (rng.integers(20, s - 20) for s in seg.shape)
        specks[x : x + 2, y : y + 2, z : z + 2] = True
    labelled, n = ndimage.label(seg)
    return {
        "shifted": np.roll(seg, (2, -1, 1), axis=(0, 1, 2)),
        "eroded": ndimage.binary_erosion(seg, iterations=2),
        "dilated_specks": ndimage.binary_dilation(seg, iterations=1) | specks,
        "largest_lost": seg & (labelled != np.argmax(np.bincount(labelled.ravel())[1:]) + 1)
        if n
        else seg,
    }


@pytest.mark.slow
@pytest.mark.real_data
def test_agrees_with_an_independent_implementation_on_real_segmentations(real_sample_dir):
    pytest.importorskip("cc3d", reason="connected-components-3d (dev extra) is not installed")
    from brats_utils.conventions import REGIONS
    from brats_utils.data.cases import discover_cases, load_case

    rng = np.random.default_rng(0)
    cases = discover_cases(real_sample_dir)
    checked = 0
    for files in (cases[0], cases[5], cases[11]):
        case = load_case(files, require_seg=True)
        spacing = tuple(float(z) for z in case.header.get_zooms()[:3])
        for region, classes in REGIONS.items():
            truth = np.isin(case.seg, classes)
            for name, pred in _perturbations(truth, rng).items():
                ours = lesion_scores(pred, truth, spacing)
                dice, hd, tp, fp, fn = _independent_lesion_scores(pred, truth, spacing)
                where = f"{files.case_id} {region} {name}"
                assert (ours.tp, ours.fp, ours.fn) == (tp, fp, fn), where
                assert ours.dice == pytest.approx(dice, abs=1e-3), where
                assert abs(ours.hd95 - hd) <= max(2.0, 0.1 * hd), where
                checked += 1
    assert checked == 3 * 3 * 4
