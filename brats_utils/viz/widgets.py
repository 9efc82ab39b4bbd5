"""An ipywidgets slice viewer over :func:`brats_utils.viz.drawing.draw_slice`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import IPython.display
import numpy as np

from brats_utils.conventions import MODALITIES, REGIONS, TUMOUR_CLASSES
from brats_utils.data.cases import CaseFiles, load_case
from brats_utils.data.nifti import read_nifti
from brats_utils.data.predictions import load_prediction
from brats_utils.evaluation.failures import error_map_path
from brats_utils.viz.drawing import (
    LABEL_ABBREVIATIONS,
    PLANES,
    default_slice_index,
    display_ranges,
    draw_slice,
    save_figure,
)

__all__ = ["VIEWER_CLASS", "SliceViewer"]

#: CSS class of the viewer's controls (its ``VBox``) in the page.
VIEWER_CLASS = "brats-viewer"


class SliceViewer:
    """Interactive viewer of cases with the folders of their predictions (``brats predict``)
    and error maps (``brats evaluate --error-maps``); one case held in memory."""

    def __init__(
        self,
        cases: Sequence[CaseFiles],
        *,
        predictions: Path | str | None = None,
        modality: str = "flair",
        error_maps: Path | str | None = None,
    ):
        self._sources = {files.case_id: files for files in cases}
        if not self._sources:
            raise ValueError("SliceViewer needs at least one case, got none")
        if modality != "all" and modality not in MODALITIES:
            raise ValueError(f"modality must be 'all' or one of {MODALITIES}")
        self.predictions = predictions
        self.error_maps = error_maps
        # only the case shown is held: image, seg, pred, ranges; its error map
        self._load = functools.lru_cache(maxsize=1)(self._read_case)
        self._load_errors = functools.lru_cache(maxsize=1)(self._read_errors)
        self.figure = None
        self.n_draws = 0
        self._quiet = False
        self._pictures: list[Any] = []  # display handles of the picture (see _ipython_display_)

        self._build_controls(modality)
        self.case.observe(self._new_slicing, names="value")
        self.plane.observe(self._new_slicing, names="value")
        controls = [self.index, self.modality, self.alpha, self.show_prediction, self.error_region]
        for control in (*controls, *self.labels.values()):
            control.observe(lambda _change: self.redraw(), names="value")
        self._new_slicing()

    def _build_controls(self, modality: str) -> None:
        import ipywidgets as w

        self.case = w.Dropdown(options=list(self._sources), description="case")
        self.plane = w.ToggleButtons(options=list(PLANES)[::-1], value="axial", description="plane")
        self.modality = w.Dropdown(
            options=[*MODALITIES, "all"], value=modality, description="modality"
        )
        self.index = w.IntSlider(
            min=0, max=1, value=0, description="slice", continuous_update=False
        )
        self.alpha = w.FloatSlider(
            min=0.0, max=1.0, step=0.05, value=0.4, description="opacity", continuous_update=False
        )
        self.labels = {
            c: w.Checkbox(value=True, description=LABEL_ABBREVIATIONS[c], indent=False)
            for c in TUMOUR_CLASSES
        }
        self.error_region = w.Dropdown(
            options=["off", *REGIONS],
            value="off",
            description="errors",
            disabled=self.error_maps is None,
        )
        self.show_prediction = w.Checkbox(
            value=self.predictions is not None,
            indent=False,
            description="prediction",
            disabled=self.predictions is None,
        )
        self.output = w.Output()
        self.widget = w.VBox(
            [
                w.HBox([self.case, self.modality]),
                self.plane,
                w.HBox([self.index, self.alpha]),
                w.HBox([*self.labels.values(), self.show_prediction, self.error_region]),
                self.output,
            ]
        )
        self.widget.add_class(VIEWER_CLASS)  # how a page (the browser test) finds the viewer

    def _read_case(self, case_id: str) -> tuple:
        case = load_case(self._sources[case_id])
        pred = None
        if self.predictions is not None:
            pred = load_prediction(self.predictions, case_id, case.release)
        return case.image, case.seg, pred, display_ranges(case.image)

    def _read_errors(self, case_id: str) -> np.ndarray | None:
        if self.error_maps is None:
            return None
        path = error_map_path(self.error_maps, case_id)
        return read_nifti(path, case_id)[0] if path.is_file() else None

    def _region_errors(self) -> np.ndarray | None:
        region = self.error_region.value
        errors = None if region == "off" else self._load_errors(self.case.value)
        return None if errors is None else errors[..., list(REGIONS).index(region)]

    def _new_slicing(self, _change=None) -> None:
        """A new case or plane: the slider's range and slice reset quietly, then one drawing."""
        image, seg, pred, _ = self._load(self.case.value)
        axis = PLANES[self.plane.value]
        self._quiet = True
        try:
            self.index.max = image.shape[axis] - 1
            labels = seg if seg is not None else pred
            self.index.value = default_slice_index(labels, self.plane.value, image.shape)
        finally:
            self._quiet = False
        self.redraw()

    def draw(self):
        """A new figure of what the controls select (no display)."""
        image, seg, pred, ranges = self._load(self.case.value)
        shown = [c for c, box in self.labels.items() if box.value]
        return draw_slice(
            image,
            seg,
            pred if self.show_prediction.value else None,
            plane=self.plane.value,
            index=self.index.value,
            modality=self.modality.value,
            labels_shown=shown,
            alpha=self.alpha.value,
            ranges=ranges,
            case_id=self.case.value,
            errors=self._region_errors(),
            errors_title=f"errors {self.error_region.value}",
        )

    def redraw(self) -> None:
        if self._quiet:
            return
        self.figure = self.draw()
        self.n_draws += 1
        if IPython.get_ipython() is None:  # plain Python (tests, scripts): nowhere to display
            return
        if self._pictures:  # shown by _ipython_display_: update the picture above the controls
            for picture in self._pictures:
                picture.update(self.figure)
            return
        with self.output:
            IPython.display.clear_output(wait=True)
            IPython.display.display(self.figure)

    def save(self, out_path: Path | str) -> Path:
        """Save the figure shown now (atomically): the static copy for reports."""
        return save_figure(self.figure if self.figure is not None else self.draw(), out_path)

    def _ipython_display_(self) -> None:
        """Show the picture (updated in place, so a saved notebook shows it), then controls."""
        # the picture below replaces the output area, which holds the first drawing when the
        # viewer was made in a kernel: without this a live page shows the figure twice
        self.output.layout.display = "none"
        if IPython.get_ipython() is not None:
            self.output.clear_output()
        self._quiet = True  # draw once, below; no redraw into the (now unused) output area
        shown = self.figure if self.figure is not None else self.draw()
        picture = IPython.display.display(shown, display_id=True)
        self._quiet = False
        if picture is not None:
            self._pictures.append(picture)
        bundle = self.widget._repr_mimebundle_() or {}  # ipywidgets 8
        bundle["text/plain"] = "slice viewer controls (they need a running kernel)"
        IPython.display.display(bundle, raw=True)
