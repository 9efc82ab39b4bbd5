"""Every user mistake answered before work starts, through the ``brats`` command line.

One table row per mistake: damaged cases, paths of the wrong kind, impossible numbers and
conflicting flags, for every subcommand. Each row runs the command line's ``main([...])`` in
this process (the same parser and error path as ``brats``; its working folder the row's own,
so a relative default lands there too; its output captured) and must exit with the README's
status (1: a case failed, the others done; 2: a user mistake), name the argument, case or
file concerned, raise nothing (``brats`` would show a traceback), and leave every file it
could touch (the row's folder and all the shared inputs) exactly as it was: no output
created, changed or half-written. A handful of rows also run as ``python -m brats_utils``
in a subprocess: the exit status a shell sees, and no traceback on its stderr. The shared
inputs are built once for the module.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import REPO_ROOT, snapshot, write_run

from brats_utils.conventions import LEGACY

pytestmark = pytest.mark.robustness

GOOD = ("BraTS2021_00000", "BraTS2021_00001")
BAD = "BraTS2021_00005"  # the one case of every damaged data folder


def _file(case: Path, kind: str) -> Path:
    return case / LEGACY.file_name(case.name, kind)


def _rewrite(path: Path, change) -> None:
    image = nib.load(path)
    data, affine = change(np.asanyarray(image.dataobj).copy(), image.affine.copy())
    nib.save(nib.Nifti1Image(data, affine, image.header), path)


def _shift_affine(data, affine):
    affine[0, 3] += 5.0  # 5 mm off the other files
    return data, affine


def _huge_header(path: Path) -> None:
    """A header that claims 30000^3 int16 voxels (50 TiB) over a 1 kB payload."""
    header = nib.Nifti1Header()
    header.set_data_shape((30000,) * 3)
    header.set_data_dtype(np.int16)
    header["vox_offset"] = 352
    path.write_bytes(gzip.compress(header.binaryblock + bytes(4) + b"\1" * 1000))


#: Damaged data folders: how the one case is damaged, and the file a message must name.
DAMAGES = {
    "shifted_affine": ("t2", lambda p: _rewrite(p, _shift_affine)),
    "slices154": ("t1", lambda p: _rewrite(p, lambda d, a: (d[..., :154], a))),
    "missing_modality": ("t1ce", lambda p: p.unlink()),
    "truncated": ("flair", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
    "not_nifti": ("t2", lambda p: p.write_text("not a NIfTI file\n")),
    "unknown_labels": ("seg", lambda p: _rewrite(p, lambda d, a: (np.where(d == 4, 3, d), a))),
    "huge_header": ("t2", _huge_header),
}
#: Absurd paths: no probe file can be created there, not even by root.
NO_WRITE = {"proc": "/proc/brats-unet", "sys": "/sys/brats-unet"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Every input the rows read, built once: {name: path} (the table's placeholders)."""
    from brats_utils.data.export import export_predictions
    from brats_utils.data.split import save_split
    from brats_utils.data.synth import write_synthetic_dataset
    from brats_utils.preprocessing.cache_build import build_cache
    from brats_utils.preprocessing.settings import PreprocessSettings

    root = tmp_path_factory.mktemp("robustness")
    good = root / "good"
    write_synthetic_dataset(good, 1, seed=0, progress=False)  # full size: check, preprocess
    _copy_case(good / GOOD[0], good / GOOD[1])
    save_split({GOOD[0]: "train", GOOD[1]: "validation"}, good / "split.csv")
    paths = {"root": root, "good": good, "split": good / "split.csv"}
    for name, (kind, damage) in DAMAGES.items():
        _copy_case(good / GOOD[0], root / name / BAD)
        damage(_file(root / name / BAD, kind))
        paths[name] = root / name
    # Case folders that cannot be read as cases: another case's file names, a broken link.
    _copy_case(good / GOOD[0], root / "misnamed" / GOOD[0])
    (root / "misnamed" / GOOD[0]).rename(root / "misnamed" / BAD)
    (root / "dangling").mkdir()
    (root / "dangling" / BAD).symlink_to(root / "gone" / BAD)
    paths.update(misnamed=root / "misnamed", dangling=root / "dangling")
    paths["file"] = root / "a_file.txt"
    paths["file"].write_text("a file, not a folder\n")
    paths["missing"] = root / "nowhere"
    paths["yaml_list"] = root / "profile_list.yaml"
    paths["yaml_list"].write_text("- epochs: 1\n- image_size: 32\n")
    # Predictions: the reference labels themselves; one folder with a truncated file.
    for folder, cases in (("pred", GOOD), ("pred5", (BAD,))):
        (root / folder).mkdir()
        for case_id in cases:
            shutil.copy(_file(good / GOOD[0], "seg"), root / folder / f"{case_id}.nii.gz")
        paths[folder] = root / folder
    shutil.copytree(root / "pred", root / "pred_bad")
    truncated = root / "pred_bad" / f"{GOOD[1]}.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[:3000])
    paths["pred_bad"] = root / "pred_bad"
    paths["exported"] = root / "exported"
    export_predictions(paths["pred"], paths["exported"], "2023")
    paths["metrics"] = root / "metrics.csv"
    paths["metrics"].write_text(f"case,dice_WT\n{GOOD[0]},0.5\n{GOOD[1]},0.7\n")
    for name, cell in (("metrics_nan", "nan"), ("metrics_empty", "")):
        paths[name] = root / f"{name}.csv"
        paths[name].write_text(f"case,dice_WT\n{GOOD[0]},0.5\n{GOOD[1]},{cell}\n")
    paths.update({name: Path(path) for name, path in NO_WRITE.items()})
    # A run folder (a 1x1-conv model at 16 x 16) and one that has chosen its postprocessing.
    paths["model"] = write_run(root / "run", 16)
    paths["run"] = root / "run"
    shutil.copytree(root / "run", root / "run_pp")
    shutil.copytree(root / "run", root / "ensemble_mixed" / "classes")
    shutil.copytree(root / "run", root / "ensemble_mixed" / "regions")
    _region_model(16).save(root / "ensemble_mixed" / "regions" / "model.keras")
    paths["ensemble_mixed"] = root / "ensemble_mixed"
    (root / "run_pp" / "postprocessing.json").write_text("{}\n")
    paths["model_pp"] = root / "run_pp" / "model.keras"
    paths["cache"] = root / "cache"
    build_cache(good, paths["cache"], PreprocessSettings(size=16, slice_start=60, slice_stop=76),
                progress=False)  # fmt: skip
    paths["html"] = root / "html"  # a folder of rendered pages, as --html writes
    paths["html"].mkdir()
    (paths["html"] / "01_exploration.html").write_text("<html>a rendered page</html>\n")
    paths["synthetic"] = root / "synthetic"
    write_synthetic_dataset(paths["synthetic"], 1, seed=0, shape=(32, 32, 24), progress=False)
    return paths


def _region_model(size: int):
    """A 1x1 conv with three sigmoids: a region-output model for the ensemble rows."""
    import keras

    inputs = keras.Input((size, size, 2))
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="sigmoid")(inputs))


def _copy_case(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for path in source.iterdir():
        shutil.copy(path, target / path.name.replace(source.name, target.name))


# --- the table ---------------------------------------------------------------------------
# A row: its id, the command (split at spaces), the exit status, what the output must name.
# They may name the {inputs} and, in the row's own folder, {out} (a new path), {out_file} (an
# existing file) and {out_folder} (an existing empty folder).


def row(name: str, command: str, status: int, *says: str):
    return pytest.param(command.split(), status, says, id=name)


TRAIN = "train --experiment early2 --epochs 1 --base-filters 4 --batch-size 4"
PREDICT = "predict --model {model} --input {good}"
POSTPROCESS = "postprocess --model {model} --input {good}"
EVALUATE = "evaluate --pred {pred} --ref {good}"
COMPARE = "compare --a {metrics} --b {metrics}"
EXPORT = "export --pred {pred} --release 2023"
NOTEBOOKS = "notebooks --profile tiny --data {good}"
SYNTH = "synth --shape 32 32 24 --no-progress"


def _damaged_rows():
    for name, (kind, _) in DAMAGES.items():
        says = (BAD, LEGACY.file_name(BAD, kind))
        yield row(f"check-{name}", f"check {{{name}}}", 1, *says)
        yield row(f"preprocess-{name}", f"preprocess {{{name}}} --out {{out}} -q", 1, *says)
    # predict reads a case as preprocess does: one row (it loads the model) is enough
    says = (BAD, LEGACY.file_name(BAD, DAMAGES["truncated"][0]))
    yield row("predict-truncated", "predict --model {model} --input {truncated} --out {out}", 1,
              *says)  # fmt: skip
    yield row(
        "predict-huge_header",
        "predict --model {model} --input {huge_header} --out {out}",
        1,
        BAD,
        "header claims (30000, 30000, 30000) voxels",
        "more than the file holds",
    )
    # a folder that looks like a case and cannot be read as one counts as a failed case
    for name, problem in (
        ("misnamed", f"no file named like {BAD}_flair"),
        ("dangling", "broken link"),
    ):
        yield row(f"check-{name}", f"check {{{name}}}", 1, BAD, problem, "1 invalid")
        yield row(f"preprocess-{name}", f"preprocess {{{name}}} --out {{out}} -q", 1, BAD, problem)
        yield row(
            f"predict-{name}",
            f"predict --model {{model}} --input {{{name}}} --out {{out}}",
            1,
            BAD,
            problem,
            "1 failed",
        )
    seg = LEGACY.file_name(BAD, "seg")
    yield row("evaluate-unknown_labels", "evaluate --pred {pred5} --ref {unknown_labels} "
              "--out {out}/m.csv", 2, BAD, seg, "labels [3]")  # fmt: skip
    truncated = f"{GOOD[1]}.nii.gz"
    yield row("evaluate-truncated_prediction", "evaluate --pred {pred_bad} --ref {good} "
              "--out {out}/m.csv", 2, truncated, "truncated")  # fmt: skip
    yield row("export-truncated_prediction", "export --pred {pred_bad} --release 2023 "
              "--out {out}", 2, truncated, "truncated")  # fmt: skip


# fmt: off
ROWS = [
    *_damaged_rows(),
    # outputs that cannot be written, even by root: refused before any work
    row("synth-out-broken-link", SYNTH + " --out {dangling}/" + BAD + " --cases 1", 2,
        "--out", "{dangling}/" + BAD, "not a folder"),
    row("synth-out-sys", SYNTH + " --out {sys}/s --cases 1", 2, "--out", "{sys}/s", "cannot write"),
    row("split-out-proc", "split {good} --out {proc}/s.csv", 2, "--out", "{proc}", "cannot write"),
    row("preprocess-out-proc", "preprocess {good} --out {proc}/c", 2, "--out", "{proc}/c",
        "cannot write"),
    row("preprocess-out-sys", "preprocess {good} --out {sys}", 2, "--out", "{sys}",
        "Permission denied"),
    row("train-out-sys", TRAIN + " --cache {cache} --out {sys}/r", 2, "--out", "cannot write"),
    row("predict-out-proc", PREDICT + " --out {proc}/p", 2, "--out", "{proc}/p", "cannot write"),
    row("evaluate-out-proc", EVALUATE + " --out {proc}/m.csv", 2, "--out", "{proc}/m.csv",
        "cannot write"),
    row("evaluate-maps-sys", EVALUATE + " --out {out}/m.csv --error-maps {sys}/maps",
        2, "--error-maps", "cannot write"),
    row("compare-out-sys", COMPARE + " --out {sys}/c.csv", 2, "--out {sys}/c.csv", "cannot write"),
    row("compare-figure-proc", COMPARE + " --out {out}/c.csv --figure {proc}/f.png",
        2, "--figure", "cannot write"),
    row("export-out-sys", EXPORT + " --out {sys}/x", 2, "--out", "{sys}/x", "cannot write"),
    row("study-out-proc", "study {good} --out {proc}/s", 2, "--out", "cannot write"),
    row("notebooks-out-sys", NOTEBOOKS + " --out {sys}/n", 2, "--out", "cannot write"),
    row("notebooks-html-proc", NOTEBOOKS + " --out {out} --html {proc}/h", 2, "--html",
        "cannot write"),
    # sizes nobody can allocate: bounded before any allocation
    row("synth-shape-100000", "synth --shape 100000 100000 100000 --out {out} --cases 1", 2,
        "--shape", "'100000'", "16 to 512"),
    row("train-base-filters-100000", TRAIN + " --cache {cache} --out {out} --base-filters 100000",
        2, "--base-filters", "'100000'", "1 to 256"),
    row("study-base-filters-100000", "study {good} --out {out} --base-filters 100000", 2,
        "--base-filters", "'100000'", "1 to 256"),
    row("train-context-999", TRAIN + " --cache {cache} --out {out} --context-slices 999", 2,
        "--context-slices 999", "{cache}", "16 slices"),
    # outputs inside the folders they read
    row("export-out-is-pred", "export --pred {pred} --release 2023 --out {pred}", 2,
        "--out {pred}", "--pred folder"),
    row("export-out-in-pred", "export --pred {pred} --release 2023 --out {pred}/x", 2,
        "--out {pred}/x", "--pred folder"),
    row("predict-out-in-case", PREDICT + " --out {good}/" + GOOD[0], 2, "--out",
        "case folder {good}/" + GOOD[0]),
    row("predict-out-is-case", "predict --model {model} --input {good}/" + GOOD[0] +
        " --out {good}/" + GOOD[0] + "/p", 2, "--out", "case folder"),
    row("preprocess-out-in-case", "preprocess {good} --out {good}/" + GOOD[0] + "/cache", 2,
        "--out", "case folder {good}/" + GOOD[0]),
    row("evaluate-maps-are-pred", EVALUATE + " --out {out}/m.csv --error-maps {pred}", 2,
        "--error-maps", "--pred folder"),
    # metric cells that are not numbers: refused naming case and column
    row("compare-nan", "compare --a {metrics_nan} --b {metrics} --out {out}/c.csv", 2,
        "table A", GOOD[1], "dice_WT", "nan"),
    row("compare-empty", "compare --a {metrics} --b {metrics_empty} --out {out}/c.csv", 2,
        "table B", GOOD[1], "dice_WT"),
    # check
    row("check-missing", "check {missing}", 2, "DATA_DIR", "{missing}", "not found"),
    row("check-file", "check {file}", 2, "DATA_DIR", "{file}", "is a file"),
    row("check-workers-0", "check {good} --workers 0", 2, "--workers", "'0'"),
    # synth
    row("synth-out-file", SYNTH + " --out {out_file} --cases 1", 2, "--out", "{out_file}"),
    row("synth-out-under-file", SYNTH + " --out {out_file}/s --cases 1", 2, "{out_file}"),
    row("synth-cases--3", SYNTH + " --out {out} --cases -3", 2, "--cases", "'-3'"),
    row("synth-cases-0", SYNTH + " --out {out} --cases 0", 2, "--cases", "'0'"),
    row("synth-cases-abc", SYNTH + " --out {out} --cases abc", 2, "--cases", "'abc'"),
    row("synth-workers-0", SYNTH + " --out {out} --cases 2 --workers 0", 2, "--workers", "'0'"),
    row("synth-seed--1", SYNTH + " --out {out} --cases 1 --seed -1", 2, "--seed", "'-1'"),
    row("synth-start--1", SYNTH + " --out {out} --cases 1 --start -1", 2, "--start", "'-1'"),
    row("synth-start-99999", SYNTH + " --out {out} --cases 2 --start 99999", 2, "99999"),
    row("synth-shape-8", "synth --shape 8 8 8 --out {out} --cases 1", 2, "--shape"),
    row("synth-other-seed-kept", SYNTH + " --out {synthetic} --cases 1 --seed 1",
        2, "{synthetic}", "seed 0", "--overwrite"),
    # split
    row("split-missing", "split {missing}", 2, "DATA_DIR", "{missing}"),
    row("split-file", "split {file}", 2, "DATA_DIR", "{file}", "is a file"),
    row("split-out-folder", "split {good} --out {out_folder}", 2, "--out", "is a folder"),
    row("split-out-under-file", "split {good} --out {out_file}/s.csv", 2, "{out_file}"),
    row("split-seed--1", "split {good} --seed -1", 2, "--seed", "'-1'"),
    row("split-different-kept", "split {good}", 2, "{split}", "different split", "--force"),
    # preprocess
    row("preprocess-missing", "preprocess {missing} --out {out}", 2, "DATA_DIR", "{missing}"),
    row("preprocess-input-file", "preprocess {file} --out {out}", 2, "DATA_DIR", "is a file"),
    row("preprocess-out-file", "preprocess {good} --out {out_file}", 2, "--out", "is a file"),
    row("preprocess-out-under-file", "preprocess {good} --out {out_file}/c", 2, "{out_file}"),
    row("preprocess-plane-oblique", "preprocess {good} --out {out} --plane oblique", 2,
        "--plane", "'oblique'"),
    row("preprocess-recipe-fast", "preprocess {good} --out {out} --recipe fast", 2,
        "--recipe", "'fast'"),
    row("preprocess-out-not-a-cache", "preprocess {good} --out {good}", 2, "not a slice cache"),
    row("preprocess-other-settings", "preprocess {good} --out {cache} --size 32",
        2, "{cache}", "size=16", "--overwrite"),
    row("preprocess-size-7", "preprocess {good} --out {out} --size 7", 2, "--size", "'7'", "of 16"),
    row("preprocess-size-40", "preprocess {good} --out {out} --size 40", 2, "--size", "'40'"),
    row("preprocess-size-4096", "preprocess {good} --out {out} --size 4096", 2, "size", "512"),
    row("preprocess-workers-0", "preprocess {good} --out {out} --workers 0", 2, "--workers"),
    row("preprocess-slices-5:3", "preprocess {good} --out {out} --slices 5:3", 2, "'5:3'"),
    row("preprocess-slices-100:200", "preprocess {good} --out {out} --slices 100:200",
        2, "--slices 100:200", "155"),
    # train
    row("train-out-file", TRAIN + " --cache {cache} --out {out_file}", 2, "--out", "is a file"),
    row("train-out-under-file", TRAIN + " --cache {cache} --out {out_file}/r", 2, "{out_file}"),
    row("train-out-used", TRAIN + " --cache {cache} --out {run}", 2, "{run}", "not empty"),
    row("train-lr-nan", TRAIN + " --cache {cache} --out {out} --lr nan", 2, "--lr", "'nan'"),
    row("train-lr--1", TRAIN + " --cache {cache} --out {out} --lr -1", 2, "--lr", "'-1'"),
    row("train-lr-inf", TRAIN + " --cache {cache} --out {out} --lr inf", 2, "--lr", "'inf'"),
    row("train-epochs-0", TRAIN + " --cache {cache} --out {out} --epochs 0", 2, "--epochs"),
    row("train-batch-size-abc", TRAIN + " --cache {cache} --out {out} --batch-size abc",
        2, "--batch-size", "'abc'"),
    row("train-empty-fraction-2", TRAIN + " --cache {cache} --out {out} --empty-slice-fraction 2",
        2, "--empty-slice-fraction", "'2'"),
    row("train-workers-0", TRAIN + " --cache {cache} --out {out} --workers 0", 2, "--workers"),
    row("train-max-cases-0", TRAIN + " --cache {cache} --out {out} --max-cases 0",
        2, "--max-cases", "'0'"),
    row("train-seed--1", TRAIN + " --cache {cache} --out {out} --seed -1", 2, "--seed", "'-1'"),
    row("train-resume-and-force", TRAIN + " --cache {cache} --out {out} --resume --force",
        2, "--force", "--resume"),
    row("train-resume-nothing", TRAIN + " --cache {cache} --out {out} --resume",
        2, "cannot resume", "{out}", "state.json"),
    row("train-cache-missing", TRAIN + " --cache {missing} --out {out}", 2, "--cache"),
    row("train-cache-file", TRAIN + " --cache {file} --out {out}", 2, "--cache", "is a file"),
    row("train-cache-not-a-cache", TRAIN + " --cache {good} --out {out}",
        2, "{good}", "manifest.json"),
    row("train-split-missing", TRAIN + " --cache {cache} --out {out} --split {missing}",
        2, "--split", "{missing}"),
    row("train-split-folder", TRAIN + " --cache {cache} --out {out} --split {good}",
        2, "--split", "is a folder"),
    row("train-experiment-early3", TRAIN + " --cache {cache} --out {out} --experiment early3",
        2, "--experiment", "'early3'"),
    row("train-context-even", TRAIN + " --cache {cache} --out {out} --context-slices 2",
        2, "--context-slices", "odd"),
    row("train-head-unknown", TRAIN + " --cache {cache} --out {out} --head sigmoid",
        2, "--head", "'sigmoid'"),
    row("train-recipe-unknown", TRAIN + " --cache {cache} --out {out} --recipe fast",
        2, "--recipe", "'fast'"),
    # study
    row("study-data-missing", "study {missing} --out {out}", 2, "DATA_DIR", "{missing}"),
    row("study-data-file", "study {file} --out {out}", 2, "DATA_DIR", "is a file"),
    row("study-out-file", "study {good} --out {out_file}", 2, "--out", "is a file"),
    row("study-configs-unknown", "study {good} --out {out} --configs current,best",
        2, "--configs", "'best'"),
    row("study-size-40", "study {good} --out {out} --size 40", 2, "--size", "'40'", "16"),
    row("study-folds-too-many", "study {good} --out {out}", 2, "cannot make 4 folds"),
    row("study-only-folds-outside", "study {good} --out {out} --only-folds 5", 2,
        "--only-folds", "0..3"),
    row("study-report-no-study", "study {good} --out {missing} --report", 2, "--out",
        "{missing}"),
    row("study-epochs-0", "study {good} --out {out} --epochs 0", 2, "--epochs"),
    # predict
    row("predict-out-file", PREDICT + " --out {out_file}", 2, "--out", "is a file"),
    row("predict-out-under-file", PREDICT + " --out {out_file}/p", 2, "{out_file}"),
    row("predict-input-missing", "predict --model {model} --input {missing} --out {out}",
        2, "--input", "{missing}"),
    row("predict-input-file", "predict --model {model} --input {file} --out {out}",
        2, "--input", "is a file"),
    row("predict-model-missing", "predict --model {missing} --input {good} --out {out}",
        2, "--model", "{missing}"),
    row("predict-model-folder-without-runs", "predict --model {good} --input {good} --out {out}",
        2, "--model", "a folder of run folders"),
    row("predict-batch-size-0", PREDICT + " --out {out} --batch-size 0", 2, "--batch-size"),
    row("predict-batch-size-abc", PREDICT + " --out {out} --batch-size abc", 2, "'abc'"),
    row("predict-subset-without-split", PREDICT + " --out {out} --subset validation",
        2, "--subset", "--split"),
    row("predict-split-missing", PREDICT + " --out {out} --split {missing}", 2, "--split"),
    row("predict-split-folder", PREDICT + " --out {out} --split {good}", 2, "is a folder"),
    row("predict-split-not-csv", PREDICT + " --out {out} --split {file}", 2, "case,split"),
    row("predict-model-mixed-ensemble", "predict --model {ensemble_mixed} --input {good} "
        "--out {out}", 2, "mixes class and region models"),
    # postprocess
    row("postprocess-without-split", POSTPROCESS, 2, "--split", "validation"),
    row("postprocess-on-test", POSTPROCESS + " --split {split} --subset test", 2, "test"),
    row("postprocess-batch-size-0", POSTPROCESS + " --split {split} --batch-size 0",
        2, "--batch-size", "'0'"),
    row("postprocess-model-missing", "postprocess --model {missing} --input {good} --split {split}",
        2, "--model", "{missing}"),
    row("postprocess-input-missing",
        "postprocess --model {model} --input {missing} --split {split}", 2, "--input", "{missing}"),
    row("postprocess-split-missing", POSTPROCESS + " --split {missing}", 2, "--split"),
    row("postprocess-kept", "postprocess --model {model_pp} --input {good} --split {split}",
        2, "postprocessing.json", "--overwrite"),
    # evaluate
    row("evaluate-out-folder", EVALUATE + " --out {out_folder}", 2, "--out", "is a folder"),
    row("evaluate-out-exists", EVALUATE + " --out {out_file}", 2, "{out_file}", "--overwrite"),
    row("evaluate-out-under-file", EVALUATE + " --out {out_file}/m.csv", 2, "{out_file}"),
    row("evaluate-maps-file", EVALUATE + " --out {out}/m.csv --error-maps {out_file}",
        2, "--error-maps", "is a file"),
    row("evaluate-pred-missing", "evaluate --pred {missing} --ref {good} --out {out}/m.csv",
        2, "--pred", "{missing}"),
    row("evaluate-pred-file", "evaluate --pred {file} --ref {good} --out {out}/m.csv",
        2, "--pred", "is a file"),
    row("evaluate-pred-no-predictions", "evaluate --pred {good} --ref {good} --out {out}/m.csv",
        2, "{good}", "prediction"),
    row("evaluate-ref-missing", "evaluate --pred {pred} --ref {missing} --out {out}/m.csv",
        2, "--ref", "{missing}"),
    row("evaluate-ref-file", "evaluate --pred {pred} --ref {file} --out {out}/m.csv",
        2, "--ref", "is a file"),
    row("evaluate-dilation--1", EVALUATE + " --out {out}/m.csv --lesion-dilation -1",
        2, "--lesion-dilation", "'-1'"),
    row("evaluate-min-volume-nan", EVALUATE + " --out {out}/m.csv --lesion-min-volume nan",
        2, "--lesion-min-volume", "'nan'"),
    row("evaluate-subset-without-split", EVALUATE + " --out {out}/m.csv --subset test",
        2, "--subset", "--split"),
    row("evaluate-split-missing", EVALUATE + " --out {out}/m.csv --split {missing}",
        2, "--split", "{missing}"),
    # compare
    row("compare-out-folder", COMPARE + " --out {out_folder}", 2, "--out", "is a folder"),
    row("compare-out-exists", COMPARE + " --out {out_file}", 2, "{out_file}", "--overwrite"),
    row("compare-figure-folder", COMPARE + " --out {out}/c.csv --figure {out_folder}",
        2, "--figure", "is a folder"),
    row("compare-figure-format", COMPARE + " --out {out}/c.csv --figure {out}/f.txt",
        2, "--figure", "f.txt", ".png"),
    row("compare-a-missing", "compare --a {missing} --b {metrics} --out {out}/c.csv",
        2, "--a", "{missing}"),
    row("compare-folder-without-ref", "compare --a {pred} --b {metrics} --out {out}/c.csv",
        2, "--a", "{pred}", "--ref"),
    row("compare-ref-missing", COMPARE + " --out {out}/c.csv --ref {missing}", 2, "--ref"),
    row("compare-resamples-0", COMPARE + " --out {out}/c.csv --resamples 0", 2, "--resamples"),
    row("compare-seed--1", COMPARE + " --out {out}/c.csv --seed -1", 2, "--seed", "'-1'"),
    row("compare-a-not-metrics", "compare --a {file} --b {metrics} --out {out}/c.csv",
        2, "'case' column"),
    # export
    row("export-out-file", EXPORT + " --out {out_file}", 2, "--out", "is a file"),
    row("export-out-under-file", EXPORT + " --out {out_file}/x", 2, "{out_file}"),
    row("export-pred-missing", "export --pred {missing} --release 2023 --out {out}",
        2, "--pred", "{missing}"),
    row("export-pred-file", "export --pred {file} --release 2023 --out {out}",
        2, "--pred", "is a file"),
    row("export-no-predictions", "export --pred {good} --release 2023 --out {out}",
        2, "{good}", "no predictions"),
    row("export-release-2019", "export --pred {pred} --release 2019 --out {out}",
        2, "--release", "'2019'"),
    row("export-kept", EXPORT + " --out {exported}", 2, "{exported}", "--overwrite"),
    # notebooks
    row("notebooks-profile-unknown", "notebooks --profile nosuch --out {out}",
        2, "profile 'nosuch'"),
    row("notebooks-profile-not-yaml", "notebooks --profile {file} --out {out}", 2, "{file}"),
    row("notebooks-out-file", NOTEBOOKS + " --out {out_file}", 2, "--out", "is a file"),
    row("notebooks-data-file", "notebooks --profile tiny --data {file} --out {out}",
        2, "--data", "is a file"),
    row("notebooks-only-09", NOTEBOOKS + " --out {out} --only 09", 2, "--only", "'09'"),
    row("notebooks-only-comma", NOTEBOOKS + " --out {out} --only ,", 2, "--only", "no notebook"),
    row("notebooks-profile-list", "notebooks --profile {yaml_list} --out {out}",
        2, "{yaml_list}", "mapping"),
    row("notebooks-param-no-value", NOTEBOOKS + " --out {out} --param epochs",
        2, "--param", "'epochs'"),
    row("notebooks-param-unknown", NOTEBOOKS + " --out {out} --param nosuch=3", 2, "nosuch"),
    row("notebooks-param-epochs-abc", NOTEBOOKS + " --out {out} --param epochs=abc",
        2, "epochs", "'abc'", "int"),
    row("notebooks-param-epochs-0", NOTEBOOKS + " --out {out} --param epochs=0", 2, "epochs"),
    row("notebooks-param-size-9999", NOTEBOOKS + " --out {out} --param image_size=9999",
        2, "size", "9999"),
    row("notebooks-html-file", NOTEBOOKS + " --out {out} --html {out_file}", 2, "--html",
        "is a file"),
    row("notebooks-html-pages-exist", NOTEBOOKS + " --out {out} --html {html}", 2, "--html",
        "01_exploration.html", "--overwrite"),
]
# fmt: on


def test_every_subcommand_has_rows():
    from brats_utils.cli.main import COMMANDS

    covered = {row.values[0][0] for row in ROWS}
    assert covered == set(COMMANDS)
    assert set(SUBPROCESS_ROWS) <= {row.id for row in ROWS}


#: Rows that also run in a real process: an argparse refusal, a BratsError, a damaged case
#: (exit 1) on a command that loads a model, a refusal of the heavy ``train`` command, an
#: output nobody can write, an unreadable case folder and a header that claims 50 TiB.
SUBPROCESS_ROWS = ("synth-cases-abc", "check-missing", "predict-truncated", "train-lr-nan",
                   "evaluate-unknown_labels", "preprocess-out-sys", "check-dangling",
                   "check-huge_header")  # fmt: skip


def _names(inputs: dict[str, Path], tmp_path: Path) -> dict[str, str]:
    """The row's placeholders, after making its own {out_file} and {out_folder}."""
    (tmp_path / "file.txt").write_text("someone's file\n")
    (tmp_path / "folder").mkdir()
    return {
        **{name: str(path) for name, path in inputs.items()},
        "out": str(tmp_path / "out"),
        "out_file": str(tmp_path / "file.txt"),
        "out_folder": str(tmp_path / "folder"),
    }


def _answered(run, inputs, tmp_path, args, status, says) -> None:
    """``run(argv) -> (exit status, output)``: the status, every expected name, no traceback,
    and no file changed."""
    names = _names(inputs, tmp_path)
    argv = [arg.format(**names) for arg in args]
    before = (snapshot(tmp_path), snapshot(inputs["root"], hash_up_to=1 << 20))
    code, output = run(argv)
    assert code == status, output
    for expected in says:
        assert expected.format(**names) in output, output
    assert "Traceback" not in output, output
    assert (snapshot(tmp_path), snapshot(inputs["root"], hash_up_to=1 << 20)) == before, output


@pytest.mark.parametrize(("args", "status", "says"), ROWS)
def test_a_mistake_is_answered_before_any_work(
    inputs, tmp_path, monkeypatch, capfd, args, status, says
):
    from brats_utils.cli.main import main

    def in_process(argv):
        monkeypatch.chdir(tmp_path)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's refusals exit as `brats` would
            code = exc.code
        captured = capfd.readouterr()
        return code, captured.out + captured.err

    _answered(in_process, inputs, tmp_path, args, status, says)


@pytest.mark.parametrize(("args", "status", "says"), [r for r in ROWS if r.id in SUBPROCESS_ROWS])
def test_a_mistake_in_a_real_process(inputs, tmp_path, args, status, says):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def in_a_process(argv):
        result = subprocess.run([sys.executable, "-m", "brats_utils", *argv], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        return result.returncode, result.stdout + result.stderr

    _answered(in_a_process, inputs, tmp_path, args, status, says)


def test_a_damaged_case_beside_good_ones_is_skipped_and_the_others_done(inputs, tmp_path):
    """Exit 1 means the command ran: the good case is cached, nothing of the damaged one."""
    data = tmp_path / "data"
    shutil.copytree(inputs["good"], data)
    shutil.copytree(inputs["truncated"] / BAD, data / BAD)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = ["preprocess", str(data), "--out", str(tmp_path / "cache"), "--size", "16", "-q"]
    result = subprocess.run([sys.executable, "-m", "brats_utils", *command], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"failed {BAD}" in result.stderr and "2 cases preprocessed" in result.stdout
    cached = sorted(p.name for p in (tmp_path / "cache" / "cases").iterdir())
    kinds = ("t1.npy", "t1ce.npy", "t2.npy", "flair.npy", "label.npy", "json")
    assert cached == sorted(f"{c}.{k}" for c in GOOD for k in kinds)


def _main(argv, capfd) -> tuple[int, str]:
    from brats_utils.cli.main import main

    code = main([str(arg) for arg in argv])
    captured = capfd.readouterr()
    return code, captured.out + captured.err


def test_a_full_disk_stops_the_run_naming_the_file_and_leaves_no_temporary(
    inputs, tmp_path, monkeypatch, capfd
):
    """Any OSError while writing (here ENOSPC in np.save) is `error: cannot write PATH: ...`."""
    import errno

    def full(file, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("brats_utils.files.np.save", full)
    cache = tmp_path / "cache"
    code, output = _main(["preprocess", inputs["good"], "--out", cache, "--size", "16", "-q"],
                         capfd)  # fmt: skip
    assert code == 2, output
    assert f"error: cannot write {cache / 'cases'}" in output, output
    assert "No space left on device" in output and "Traceback" not in output
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    # outside the atomic writes (here synth's first mkdir): the error, still no traceback
    monkeypatch.setattr("pathlib.Path.mkdir", full)
    code, output = _main(["synth", "--out", tmp_path / "s", "--cases", "1"], capfd)
    assert code == 2 and "error: OSError: [Errno 28] No space left on device" in output, output
    assert "Traceback" not in output and not (tmp_path / "s").exists()


def test_a_memory_error_is_a_message_not_a_traceback(inputs, monkeypatch, capfd):
    import brats_utils.cli.check

    def exhausted(args):
        raise MemoryError("Unable to allocate 50.3 TiB for an array")

    monkeypatch.setattr(brats_utils.cli.check, "run", exhausted)
    code, output = _main(["check", inputs["good"]], capfd)
    assert code == 2
    assert "error: MemoryError: Unable to allocate 50.3 TiB" in output


def test_error_maps_of_a_killed_evaluation_are_kept_and_the_rest_written(inputs, tmp_path, capfd):
    """A kill leaves some maps and no CSV: the rerun keeps them (unless --overwrite). The maps
    go in a folder inside --pred, as docs/cli.md shows: they do not mix with the predictions."""
    pred = shutil.copytree(inputs["pred"], tmp_path / "pred")
    maps, out = pred / "errors", pred / "m.csv"
    command = ["evaluate", "--pred", pred, "--ref", inputs["good"], "--out", out,
               "--error-maps", maps]  # fmt: skip
    assert _main(command, capfd)[0] == 0
    kept, redone = (maps / f"{case_id}_errors.nii.gz" for case_id in GOOD)
    first = kept.read_bytes()
    kept.write_bytes(b"kept as it is")  # not rewritten: the bytes tell
    redone.unlink()
    (maps / f".{redone.name}.x.tmp.nii.gz").write_bytes(b"half-written")
    out.unlink()
    out.with_name("m_summary.csv").unlink()
    code, output = _main(command, capfd)
    assert code == 0, output
    assert kept.read_bytes() == b"kept as it is" and redone.is_file()
    assert sorted(p.name for p in maps.iterdir()) == sorted([kept.name, redone.name])
    assert _main([*command, "--overwrite"], capfd)[0] == 0
    assert kept.read_bytes() == first
