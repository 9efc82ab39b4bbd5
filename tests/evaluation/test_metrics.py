"""Numpy reference metrics on hand-computed arrays, and the Keras metrics against them."""

from __future__ import annotations

import numpy as np
import pytest

from brats_utils.evaluation.slice_metrics import (
    LABEL_METRICS,
    confusion_matrix,
    label_metrics,
    region_dice_from_cm,
    safe_ratio,
)

# Hand-checked example (8 voxels): see the expected values below.
TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 3])
PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0])


def test_confusion_matrix_literal():
    cm = confusion_matrix(TRUE.reshape(2, 4), PRED.reshape(2, 4))
    expected = [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 2, 0], [1, 0, 0, 0]]
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64


def test_label_metrics_literal():
    scores = label_metrics(confusion_matrix(TRUE, PRED))
    assert list(scores) == list(LABEL_METRICS)
    expected = {
        "mean_iou": (0.5 + 1 / 3 + 2 / 3 + 0.0) / 4,
        "dice": (0.5 + 0.8 + 0.0) / 3,
        "dice_all": (2 / 3 + 0.5 + 0.8 + 0.0) / 4,
        "precision": (0.5 + 2 / 3 + 1.0) / 3,  # enhancing never predicted: 0/0 -> 1
        "sensitivity": (0.5 + 1.0 + 0.0) / 3,
        "specificity": (5 / 6 + 5 / 6 + 1.0) / 3,
        "dice_tumour": 0.8,
        "precision_tumour": 0.8,
        "sensitivity_tumour": 0.8,
        "specificity_tumour": 2 / 3,
        "dice_necrotic": 0.5,
        "dice_edema": 0.8,
        "dice_enhancing": 0.0,
    }
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value), key


@pytest.mark.parametrize("seed", range(5))
def test_label_metrics_per_class_counts_are_one_vs_rest(seed):
    cm = np.random.default_rng(seed).integers(0, 10 ** (seed + 2), (4, 4))
    cm[seed % 4] = 0  # a class never in the truth
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(axis=0) - tp, cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    metrics = label_metrics(cm)
    assert metrics["mean_iou"] == float(safe_ratio(tp, tp + fp + fn).mean())
    assert metrics["dice_all"] == float(safe_ratio(2 * tp, 2 * tp + fp + fn).mean())
    assert metrics["specificity"] == float(safe_ratio(tn, tn + fp)[1:].mean())
    assert metrics["precision"] == float(safe_ratio(tp, tp + fp)[1:].mean())


def test_region_dice_literal():
    assert region_dice_from_cm(confusion_matrix(TRUE, PRED)) == pytest.approx(
        {"WT": 0.8, "TC": 0.4, "ET": 0.0}
    )


def test_empty_masks_score_one():
    empty = np.zeros((3, 5), dtype=np.uint8)
    scores = label_metrics(confusion_matrix(empty, empty))
    for key in ("mean_iou", "dice", "dice_all", "dice_necrotic", "dice_tumour", "precision"):
        assert scores[key] == 1.0, key
    assert region_dice_from_cm(confusion_matrix(empty, empty)) == {"WT": 1.0, "TC": 1.0, "ET": 1.0}


def test_class_absent_from_one_side_scores_zero():
    truth = np.array([0, 0, 3, 3])
    scores = label_metrics(confusion_matrix(truth, np.zeros(4, dtype=int)))
    assert scores["dice_enhancing"] == 0.0
    assert scores["dice_necrotic"] == 1.0  # absent from both
    assert region_dice_from_cm(confusion_matrix(truth, np.zeros(4, dtype=int))) == {
        "WT": 0.0,
        "TC": 0.0,
        "ET": 0.0,
    }


def test_region_dice_from_cm_matches_binary_masks():
    rng = np.random.default_rng(3)
    truth, pred = rng.integers(0, 4, (2, 50, 50))
    scores = region_dice_from_cm(confusion_matrix(truth, pred))
    for region, classes in {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}.items():
        t, p = np.isin(truth, classes), np.isin(pred, classes)
        assert scores[region] == pytest.approx(2 * (t & p).sum() / (t.sum() + p.sum()))


@pytest.mark.parametrize(
    ("truth", "pred", "message"),
    [
        (np.zeros((2, 3), int), np.zeros((3, 2), int), "shape"),
        (np.zeros(3), np.zeros(3), "integer"),
        (np.array([0, 4]), np.array([0, 1]), "0..3"),
    ],
)
def test_confusion_matrix_rejects_bad_input(truth, pred, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(truth, pred)


def test_label_metrics_rejects_bad_matrix():
    with pytest.raises(ValueError, match="square"):
        label_metrics(np.zeros((4, 3)))


# --- Keras metrics mirror the numpy reference -------------------------------------------


def test_keras_metrics_match_numpy_over_several_batches():
    from brats_utils.training.keras_metrics import CONFUSION_METRICS, ConfusionMatrixMetric

    rng = np.random.default_rng(0)
    metrics = [ConfusionMatrixMetric(name) for name in CONFUSION_METRICS]
    cm = np.zeros((4, 4), dtype=np.int64)
    for _ in range(4):
        truth = rng.choice(4, size=(3, 16, 16), p=[0.7, 0.1, 0.15, 0.05])
        probs = rng.random((3, 16, 16, 4)).astype("float32")
        probs[..., 0] += 0.5 * (truth == 0)  # a better-than-chance predictor
        cm += confusion_matrix(truth, probs.argmax(-1))
        onehot = np.eye(4, dtype="float32")[truth]
        for metric in metrics:
            metric.update_state(onehot, probs)
    reference = label_metrics(cm)
    reference.update({f"dice_{k.lower()}": v for k, v in region_dice_from_cm(cm).items()})
    for metric in metrics:
        assert float(metric.result()) == pytest.approx(reference[metric.name], abs=1e-6)
    metrics[0].reset_state()
    assert float(metrics[0].result()) == 1.0  # nothing seen: 0/0 everywhere


def test_keras_metric_accepts_class_indices_and_weights():
    from brats_utils.training.keras_metrics import ConfusionMatrixMetric

    metric = ConfusionMatrixMetric("dice_edema")
    truth = np.array([[2, 2, 0, 0]])
    probs = np.eye(4, dtype="float32")[[[2, 0, 2, 0]]]
    metric.update_state(truth, probs, sample_weight=np.array([[1.0, 1.0, 0.0, 1.0]]))
    # Weighted: TP 1, FN 1, FP 0 (the false positive has weight 0) -> 2/3.
    assert float(metric.result()) == pytest.approx(2 / 3)


def test_keras_metric_accumulates_large_counts_exactly():
    from brats_utils.training.keras_metrics import ConfusionMatrixMetric

    metric = ConfusionMatrixMetric("dice")
    start = np.full((4, 4), 2.0**25, dtype="float32")  # float32 spacing here is 4
    metric.confusion.assign(start)
    truth = np.zeros((1, 3), dtype=int)  # 3 background voxels per batch
    probs = np.eye(4, dtype="float32")[truth]
    for _ in range(100):
        metric.update_state(truth, probs)
    total = float(metric.confusion.numpy()[0, 0]) - float(metric.compensation.numpy()[0, 0])
    assert total == 2.0**25 + 300  # naive float32 summation drifts to 2**25 + 400


def test_unknown_keras_metric_is_refused():
    from brats_utils.training.keras_metrics import ConfusionMatrixMetric

    with pytest.raises(ValueError, match="unknown metric"):
        ConfusionMatrixMetric("dice_whole")


def test_default_metrics_names():
    from brats_utils.training.keras_metrics import default_metrics

    names = [m.name for m in default_metrics()]
    assert names == [
        "mean_iou",
        "dice",
        "precision",
        "sensitivity",
        "specificity",
        "dice_necrotic",
        "dice_edema",
        "dice_wt",
        "dice_tc",
        "dice_et",  # the ET label's Dice too: one name per quantity
    ]
