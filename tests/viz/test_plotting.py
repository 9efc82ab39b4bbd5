"""Plot functions return figures and write files (headless Agg); draw_slice for every plane."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from brats_utils.conventions import MODALITIES
from brats_utils.viz.data_figures import (
    intensity_histograms,
    label_volumes,
    plot_intensity_histograms,
    plot_label_volumes,
    plot_preprocessing,
    plot_slice_label_stats,
    plot_split_counts,
    slice_label_stats,
)
from brats_utils.viz.drawing import (
    LABEL_COLORS,
    PLANES,
    default_slice_index,
    display_ranges,
    draw_slice,
    label_overlay,
    new_axes,
    slice_2d,
)
from brats_utils.viz.result_figures import (
    BASELINE_LABEL_DICE,
    baseline_table,
    plot_metric_bars,
    plot_prediction_examples,
    plot_region_dice_boxes,
    plot_training_curves,
)

matplotlib.use("Agg")
SHAPE = (24, 20, 16)


@pytest.fixture
def volume() -> tuple[np.ndarray, np.ndarray]:
    """A small seeded 4-channel volume with a zero border and a box tumour of three labels."""
    rng = np.random.default_rng(3)
    image = rng.uniform(1.0, 2.0, (*SHAPE, 4)).astype(np.float32)
    image[:2] = 0.0
    seg = np.zeros(SHAPE, np.uint8)
    seg[8:14, 6:12, 5:10] = 2
    seg[9:13, 7:11, 6:9] = 1
    seg[10:12, 8:10, 7] = 3
    return image, seg


def _png_ok(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_slice_2d_orientation():
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    axial = slice_2d(volume, "axial", 1)
    assert axial.shape == (3, 2) and axial[0, 1] == volume[1, 0, 1]  # rows y, columns x
    coronal = slice_2d(volume, "coronal", 2)
    assert coronal.shape == (4, 2) and coronal[0, 0] == volume[0, 2, 3]  # superior at top
    sagittal = slice_2d(volume, "sagittal", 0)
    assert sagittal.shape == (4, 3) and sagittal[-1, 2] == volume[0, 2, 0]
    with pytest.raises(ValueError, match="axial slice index must lie in 0..3"):
        slice_2d(volume, "axial", 4)
    with pytest.raises(ValueError, match="plane must be one of"):
        slice_2d(volume, "oblique", 0)


def test_default_slice_index_picks_largest_tumour(volume):
    _, seg = volume
    seg = seg.copy()
    seg[0:20, 0:20, 12] = 2
    seg[0, 0:15, 0:3] = 1
    assert default_slice_index(seg, "axial", SHAPE) == 12
    assert default_slice_index(seg, "sagittal", SHAPE) == 0
    assert default_slice_index(None, "coronal", SHAPE) == SHAPE[1] // 2
    assert default_slice_index(np.zeros(SHAPE, np.uint8), "sagittal", SHAPE) == SHAPE[0] // 2


def test_label_overlay_colours_and_toggles():
    seg = np.array([[0, 1], [2, 3]], np.uint8)
    rgba = label_overlay(seg, labels_shown=(1, 3), alpha=0.5)
    assert rgba.shape == (2, 2, 4)
    assert rgba[0, 0, 3] == 0 and rgba[1, 0, 3] == 0  # background and hidden ED transparent
    np.testing.assert_allclose(rgba[0, 1], (*to_rgba(LABEL_COLORS[1])[:3], 0.5), rtol=1e-6)
    np.testing.assert_allclose(rgba[1, 1, :3], to_rgba(LABEL_COLORS[3])[:3], rtol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        label_overlay(seg, alpha=1.5)
    with pytest.raises(ValueError, match="tumour classes"):
        label_overlay(seg, labels_shown=(0,))


def test_display_ranges_ignore_background(volume):
    image, _ = volume
    ranges = display_ranges(image)
    assert set(ranges) == set(MODALITIES)
    for low, high in ranges.values():
        assert 1.0 <= low < high <= 2.0
    with pytest.raises(ValueError, match="expected 4"):
        display_ranges(image[..., :2])


@pytest.mark.parametrize("plane", list(PLANES))
def test_draw_slice_every_plane(volume, plane, tmp_path):
    image, seg = volume
    bare = draw_slice(image, plane=plane, modality="t2")
    assert isinstance(bare, Figure) and len(bare.axes) == 1
    assert len(bare.axes[0].images) == 1  # no overlay without labels
    out = tmp_path / f"{plane}.png"
    fig = draw_slice(image, seg, seg, plane=plane, modality="all", out_path=out)
    assert len(fig.axes) == 8  # 4 modalities x (ground truth, prediction)
    assert all(len(ax.images) == 2 for ax in fig.axes)
    assert _png_ok(out)
    one = draw_slice(image, seg, seg, plane=plane, modality="flair", labels_shown=(2,))
    assert [ax.get_title() for ax in one.axes] == ["FLAIR + ground truth", "FLAIR + prediction"]


def test_draw_slice_overlay_shows_only_selected_labels(volume):
    image, seg = volume
    fig = draw_slice(image, seg, plane="axial", index=7, modality="t1", labels_shown=(1,))
    overlay = fig.axes[0].images[1].get_array()
    visible = overlay[..., 3] > 0
    np.testing.assert_array_equal(visible, slice_2d(seg, "axial", 7) == 1)


def test_draw_slice_checks_inputs(volume):
    image, seg = volume
    with pytest.raises(ValueError, match="seg has shape"):
        draw_slice(image, seg[:-1])
    with pytest.raises(ValueError, match="modality must be"):
        draw_slice(image, seg, modality="pd")
    with pytest.raises(ValueError, match=r"image must be \(X, Y, Z, 4\)"):
        draw_slice(image[..., 0])
    fig, axes = new_axes(None, 3)
    with pytest.raises(ValueError, match="needs 2 Axes, got 3"):
        draw_slice(image, seg, seg, modality="t1", ax=axes)


def test_draw_slice_on_given_axes(volume):
    image, seg = volume
    fig, axes = new_axes(None, 2)
    assert draw_slice(image, seg, seg, modality="t1", ax=axes) is fig


def test_modality_grid_and_preprocessing(volume, tmp_path):
    image, seg = volume
    fig = draw_slice(image, seg, modality="all", case_id="X", out_path=tmp_path / "grid.png")
    assert len(fig.axes) == 4 and fig._suptitle.get_text().startswith("X: axial slice")
    cached = np.moveaxis(image, 2, 0)[:, ::2, ::2]
    labels = np.moveaxis(seg, 2, 0)[:, ::2, ::2]
    fig = plot_preprocessing(
        image, seg, cached, labels, raw_index=7, cached_index=7, out_path=tmp_path / "pre.png"
    )
    assert len(fig.axes) >= 10 and _png_ok(tmp_path / "pre.png")  # 10 panels + colour bars


def test_intensity_histograms_count_every_brain_voxel(volume, tmp_path):
    image, seg = volume
    hist = intensity_histograms([(image, seg), (image, None)], normalize=False)
    brain = int(np.any(image != 0, axis=-1).sum())
    tumour = int(np.count_nonzero(seg))
    for modality in MODALITIES:
        counts = hist.counts[modality]
        assert sum(int(c.sum()) for c in counts.values()) == 2 * brain
        assert int(counts["ET"].sum()) == int((seg == 3).sum())
        assert int(counts["brain"].sum()) == 2 * brain - tumour
    assert hist.n_cases == 2
    fig = plot_intensity_histograms(hist, out_path=tmp_path / "hist.png")
    assert len(fig.axes) == 4 and _png_ok(tmp_path / "hist.png")


def test_label_volumes_and_bars(volume, tmp_path):
    _, seg = volume
    volumes = label_volumes(seg)
    assert volumes == pytest.approx(
        {"NCR": (seg == 1).sum() / 1000, "ED": (seg == 2).sum() / 1000, "ET": 0.004}
    )
    table = pd.DataFrame([volumes, label_volumes(seg[:, :, :6])], index=["a", "b"])
    fig = plot_label_volumes(table, out_path=tmp_path / "vol.png")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["a", "b"] and _png_ok(tmp_path / "vol.png")  # sorted by volume
    with pytest.raises(ValueError, match="lacks columns"):
        plot_label_volumes(table.drop(columns="ET"))


def test_split_counts(tmp_path):
    split = {"a": "train", "b": "train", "c": "validation", "d": "test"}
    fig = plot_split_counts(split, out_path=tmp_path / "split.png")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [2, 1, 1] and _png_ok(tmp_path / "split.png")


class _FakeCache:
    """The part of SliceCache that slice_label_stats reads."""

    class settings:  # noqa: N801 - mimics the attribute
        slice_start = 10

    def __init__(self, labels: dict[str, np.ndarray]):
        self._labels = labels
        self.case_ids = tuple(labels)

    def has_labels(self, case_id):
        return True

    def labels(self, case_id):
        return self._labels[case_id]


def test_slice_label_stats(tmp_path):
    a = np.zeros((3, 4, 4), np.uint8)
    a[1, 0, :2] = 1
    a[2, 1, 0] = 3
    b = np.zeros((3, 4, 4), np.uint8)
    b[1, 2, 2] = 2
    stats = slice_label_stats(_FakeCache({"a": a, "b": b}))
    assert list(stats.index) == [10, 11, 12]
    assert stats.loc[11, ["NCR", "ED", "ET"]].tolist() == [2, 1, 0]
    assert stats["tumour_cases"].tolist() == [0.0, 1.0, 0.5]
    assert int(stats[["background", "NCR", "ED", "ET"]].to_numpy().sum()) == 2 * a.size
    fig = plot_slice_label_stats(stats, out_path=tmp_path / "stats.png")
    assert len(fig.axes) == 2 and _png_ok(tmp_path / "stats.png")


def test_training_curves_from_files(tmp_path):
    history = {
        "loss": [1.0, 0.6],
        "val_loss": [1.1, 0.7],
        "dice": [0.2, 0.5],
        "val_dice": [0.1, 0.4],
        "learning_rate": [1e-3, 1e-3],
        "seconds": [9, 8],
    }
    pd.DataFrame({"epoch": [1, 2], **history}).to_csv(tmp_path / "history.csv", index=False)
    fig = plot_training_curves(tmp_path / "history.csv", out_path=tmp_path / "curves.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "dice"]  # no timings
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]  # train and validation
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), [0.1, 0.4])
    assert _png_ok(tmp_path / "curves.png")
    np.testing.assert_array_equal(fig.axes[1].lines[1].get_xdata(), [1, 2])  # 1-based epochs
    pd.DataFrame({"epoch": [1, 2]}).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ValueError, match="no metric"):
        plot_training_curves(tmp_path / "empty.csv")


def test_metric_bars_mark_the_seed(tmp_path):
    table = pd.DataFrame(
        {"dice_necrotic": [0.5, 0.6], "dice_edema": [0.7, 0.8], "hd95_WT": [12.0, 9.0]},
        index=["early4", "early2"],
    )
    reference = {e: v["validation"] for e, v in BASELINE_LABEL_DICE.items()}
    fig = plot_metric_bars(table, reference=reference, out_path=tmp_path / "bars.png")
    assert len(fig.axes) == 3
    necrotic = fig.axes[0]
    assert [p.get_height() for p in necrotic.patches] == [0.5, 0.6]
    marks = [segment[0][1] for c in necrotic.collections for segment in c.get_segments()]
    assert marks == pytest.approx([0.61, 0.69])  # baseline's early4 and early2 validation NCR
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["baseline (reported)"]
    assert fig.axes[2].get_ylim()[1] > 12  # HD95 is not clipped to [0, 1]
    assert _png_ok(tmp_path / "bars.png")


def test_seed_table_has_the_reported_numbers():
    measured = pd.DataFrame(
        {"mean_iou": [0.5], "dice_edema": [0.7], "dice_necrotic": [0.6], "dice_enhancing": [0.8]},
        index=pd.MultiIndex.from_tuples([("test", "early2")], names=["split", "experiment"]),
    )
    both = baseline_table(measured)
    assert both.loc[("validation", "baseline early2"), "dice_enhancing"] == 0.80
    assert both.loc[("test", "baseline early2"), "dice_necrotic"] == 0.65
    assert list(both.columns[:3]) == ["dice_necrotic", "dice_edema", "dice_enhancing"]
    assert both.loc[("test", "early2"), "dice_edema"] == 0.7 and len(both) == 3 + 1
    assert both.loc[("validation", "baseline early4"), "dice_edema"] == 0.76


def test_region_dice_boxes(tmp_path):
    rng = np.random.default_rng(0)
    per_case = {
        v: pd.DataFrame({f"dice_{r}": rng.uniform(size=5) for r in ("WT", "TC", "ET")})
        for v in ("early4", "mean4")
    }
    fig = plot_region_dice_boxes(per_case, out_path=tmp_path / "box.png")
    assert [ax.get_title() for ax in fig.axes] == ["dice WT", "dice TC", "dice ET"]
    assert len(fig.axes[0].collections) == 2  # one scatter of cases per variant
    assert _png_ok(tmp_path / "box.png")
    with pytest.raises(ValueError, match="lacks columns"):
        plot_region_dice_boxes({"x": per_case["early4"].drop(columns="dice_TC")})


def test_prediction_examples(volume, tmp_path):
    image, seg = volume
    images = np.moveaxis(image, 2, 0)[6:9]
    truth = np.moveaxis(seg, 2, 0)[6:9]
    fig = plot_prediction_examples(
        images, truth, np.zeros_like(truth), row_titles=list("abc"), out_path=tmp_path / "ex.png"
    )
    assert len(fig.axes) == 3 * 6
    assert [ax.get_title() for ax in fig.axes[:6]][-2:] == ["ground truth", "prediction"]
    assert _png_ok(tmp_path / "ex.png")
    with pytest.raises(ValueError, match="must both be"):
        plot_prediction_examples(images, truth[:2], truth)


def test_every_figure_draws_an_axial_slice_the_same_way_up():
    """The one orientation rule (drawing.axial_view): the viewer, the examples, the error map
    and the mean image all show slice_2d's picture, never a rotated or flipped one."""
    from brats_utils.evaluation.failures import error_map
    from brats_utils.viz.evaluation_figures import plot_error_map
    from brats_utils.viz.result_figures import plot_mean_image

    shape = (10, 14, 3)  # not square: a rotation would change the drawn shape
    image = np.zeros((*shape, 4), np.float32)
    image[2:9, 1:13] = np.arange(1, 4 * 7 * 12 + 1).reshape(7, 12, 1, 4)  # no symmetry
    seg = np.zeros(shape, np.uint8)
    seg[3:5, 2:9, 1] = 2
    expected = slice_2d(image[..., 3], "axial", 1)  # FLAIR
    drawn = {
        "draw_slice": draw_slice(image, seg, index=1).axes[0],
        "examples": plot_prediction_examples(image[:, :, 1:2].transpose(2, 0, 1, 3),
                                             seg[None, :, :, 1], seg[None, :, :, 1]).axes[3],
        "error map": plot_error_map(image, error_map(seg, seg), index=1).axes[0],
        "mean image": plot_mean_image(image[:, :, 1], seg[:, :, 1]).axes[3],
    }  # fmt: skip
    for name, axis in drawn.items():
        shown = np.ma.filled(axis.images[0].get_array().astype(float), 0.0)
        assert np.array_equal(np.nan_to_num(shown), expected), name
        assert axis.images[0].origin == "upper", name


def test_study_figures_draw_a_panel_per_dice_metric(tmp_path):
    from brats_utils.viz.result_figures import plot_study_differences, plot_study_summary

    metrics = [f"{kind}_{r}" for kind in ("dice", "lesion_dice") for r in ("WT", "TC", "ET")]
    summary = pd.DataFrame(index=["baseline", "best"])
    for metric in metrics:
        summary[metric], summary[f"{metric}_low"], summary[f"{metric}_high"] = 0.7, 0.6, 0.8
    fig = plot_study_summary(summary, out_path=tmp_path / "summary.png")
    assert [a.get_title() for a in fig.axes] == metrics
    assert (tmp_path / "summary.png").stat().st_size > 0
    rows = [{"config": "best", "metric": m, "mean_difference": 0.02} for m in metrics]
    compared = pd.DataFrame(rows).assign(ci_low=0.01, ci_high=0.03)
    fig = plot_study_differences(compared, "baseline")
    assert fig._suptitle.get_text().startswith("Paired differences against baseline")
    low, high = fig.axes[0].get_xlim()
    assert low == -high  # symmetric about 0
