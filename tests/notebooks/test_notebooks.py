"""The numbered notebooks: structure, parameter profiles, the runner, and a tiny papermill run."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
from helpers import require_backend

from brats_utils.cli.main import main
from brats_utils.errors import BratsError
from brats_utils.files import write_csv, write_json
from brats_utils.model.experiments import EXPERIMENTS
from brats_utils.notebooks.runner import (
    NOTEBOOK_DIR,
    NOTEBOOKS,
    PROFILES,
    Profile,
    ensure_data,
    ensure_kernel,
    load_profile,
    parse_param,
    run_notebooks,
    select_notebooks,
)
from brats_utils.notebooks.support import (
    OutputPaths,
    ensure_split,
    evaluate_slices,
    example_slices,
    load_per_case,
    load_variant_metrics,
    rank_cases,
    variant_record,
)

SOURCES = [NOTEBOOK_DIR / f"{name}.ipynb" for name in NOTEBOOKS]


def _parameter_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = _parameter_cells(nb)
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert nb.cells.index(params[0]) == 1  # right after the title
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs committed"
    # every line of the parameters cell is a typed, commented default papermill can read
    lines = [ln for ln in params[0].source.splitlines() if ln.strip()]
    declared = papermill.inspect_notebook(str(path))
    assert len(declared) == len(lines)
    for name, info in declared.items():
        assert info["inferred_type_name"] in {"str", "int", "float", "bool"}, name
        assert info["help"], f"{name} has no comment"
    assert {"data_dir", "out_dir"} <= set(declared)


def test_variant_notebooks_match_the_experiments():
    names = {}
    for path in SOURCES[2:5]:
        setup = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        names[path.stem[:2]] = next(e for e in EXPERIMENTS if f'get_experiment("{e}")' in setup)
    assert names == {"03": "early4", "04": "mean4", "05": "early2"}


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_only_set_declared_parameters(name):
    profile = load_profile(name)
    declared = set().union(*(papermill.inspect_notebook(str(p)) for p in SOURCES))
    assert set(profile.parameters) <= declared
    assert profile.description


def test_profile_settings():
    full, smoke, tiny = (load_profile(n) for n in ("full", "smoke", "tiny"))
    assert full.synthetic_cases is None  # real data only
    assert full.parameters["image_size"] == 128 and full.parameters["epochs"] == 15
    assert (full.parameters["slice_start"], full.parameters["slice_stop"]) == (22, 122)
    assert smoke.synthetic_cases == 24
    assert tiny.parameters["epochs"] <= smoke.parameters["epochs"] <= full.parameters["epochs"]
    assert tiny.parameters["image_size"] <= 64
    # the tiny profile draws small volumes (the notebooks read the shape the folder records);
    # the others BraTS's own
    assert np.prod(tiny.synthetic_shape) * 50 < np.prod(smoke.synthetic_shape)
    assert full.synthetic_shape == smoke.synthetic_shape == (240, 240, 155)
    assert tiny.parameters["slice_stop"] <= tiny.synthetic_shape[2]


def test_load_profile_errors(tmp_path):
    with pytest.raises(BratsError, match="known profiles"):
        load_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: [1, 2]\nsurprise: 1\n")
    with pytest.raises(BratsError, match="surprise"):
        load_profile(bad)
    bad.write_text("parameters: {a: [\n")
    with pytest.raises(BratsError, match="not valid YAML"):
        load_profile(bad)


def test_parse_param_types():
    assert parse_param("epochs=3") == ("epochs", 3)
    assert parse_param("learning_rate=1e-4") == ("learning_rate", 1e-4)
    assert parse_param("tta=true") == ("tta", True)
    assert parse_param("loss=dice_ce") == ("loss", "dice_ce")
    assert parse_param("split_csv=") == ("split_csv", "")
    with pytest.raises(BratsError, match="key=value"):
        parse_param("epochs")


def _papermill_cli_parameters(tmp_path, *options: str) -> dict:
    """The parameters ``papermill --prepare-only OPTIONS`` injects into a notebook."""
    from click.testing import CliRunner
    from papermill.cli import papermill as papermill_cli

    cell = nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata.kernelspec = {"name": "python3", "language": "python", "display_name": "Python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    out = tmp_path / "out.ipynb"
    args = [str(tmp_path / "in.ipynb"), str(out), "--prepare-only", *options]
    result = CliRunner().invoke(papermill_cli, args)
    assert result.exit_code == 0, result.output
    return nbformat.read(out, as_version=4).metadata.papermill.parameters


def test_profiles_and_params_are_read_as_papermill_reads_them(tmp_path):
    """A profile's parameters are what ``papermill -f`` reads from the same YAML, and
    ``--param key=value`` is ``papermill -y "key: value"`` but for two cases."""
    values = ["epochs: 3", "learning_rate: 0.001", "loss: dice_ce", "tta: yes", "tag: null",
              "study_configs: current,+postprocess", 'split_csv: ""', "day: 2026-12-01",
              "sizes: [32, 64]"]  # fmt: skip
    (tmp_path / "params.yaml").write_text("\n".join(values) + "\n")
    indented = "".join(f"  {line}\n" for line in values)
    (tmp_path / "mine.yaml").write_text(f"description: test\nparameters:\n{indented}")
    from_file = _papermill_cli_parameters(tmp_path, "-f", str(tmp_path / "params.yaml"))
    assert load_profile(tmp_path / "mine.yaml").parameters == from_file
    assert from_file["day"] == "2026-12-01"  # papermill's loader keeps dates as text
    given = [line.replace(": ", "=", 1).replace('""', "") for line in values]
    yaml_options = [option for line in values for option in ("-y", line)]
    from_yaml = _papermill_cli_parameters(tmp_path, *yaml_options)
    assert dict(parse_param(text) for text in given) == from_yaml
    # The two differences: YAML 1.1 reads 1e-4 as text (a float here), and nothing as None.
    assert _papermill_cli_parameters(tmp_path, "-y", "lr: 1e-4", "-y", "x: ") == {
        "lr": "1e-4",
        "x": None,
    }
    assert dict(map(parse_param, ["lr=1e-4", "x="])) == {"lr": 1e-4, "x": ""}


def test_select_notebooks():
    assert select_notebooks(None) == list(NOTEBOOKS)
    assert select_notebooks("3,1") == ["01_exploration", "03_unet_early_fusion_4mod"]
    assert select_notebooks(["06_results"]) == ["06_results"]
    with pytest.raises(BratsError, match="matches no notebook"):
        select_notebooks("08")


def test_ensure_kernel_runs_this_python():
    from jupyter_client.kernelspec import KernelSpecManager

    name = ensure_kernel()
    command = KernelSpecManager().get_kernel_spec(name).argv[0]
    assert (
        command in {"python", "python3"}
        or Path(command).resolve() == Path(sys.executable).resolve()
    )


def test_run_refuses_unknown_parameters_and_missing_data(tmp_path):
    with pytest.raises(BratsError, match=r"parameters \['epochz'\]"):
        run_notebooks("tiny", tmp_path / "data", tmp_path / "out", overrides={"epochz": 1})
    full = Profile("full", "", None, 0, {})
    with pytest.raises(BratsError, match="needs real data"):
        ensure_data(tmp_path / "empty", full)
    # A profile serves the whole series: --only 01 does not make `epochs` unknown (the
    # check passes and the run stops at the missing real data instead).
    with pytest.raises(BratsError, match="needs real data"):
        run_notebooks("full", tmp_path / "empty", tmp_path / "out", only="01,03")
    assert not (tmp_path / "out").exists()  # nothing ran


def test_cli_reports_user_errors(capsys):
    assert main(["notebooks", "--profile", "nope"]) == 2
    assert "known profiles" in capsys.readouterr().err


def test_cli_help_does_not_import_keras():
    code = (
        "import sys; from brats_utils.cli.main import main\n"
        "try:\n    main(['notebooks', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# --- notebook_support ---------------------------------------------------------------------


def test_output_paths(tmp_path):
    paths = OutputPaths(tmp_path / "out")
    assert paths.figure("01_x.png") == tmp_path / "out" / "figures" / "01_x.png"
    assert paths.figures.is_dir() and paths.tables.is_dir()
    assert paths.run("early2") == tmp_path / "out" / "runs" / "early2"
    assert paths.table("t.csv") == tmp_path / "out" / "tables" / "t.csv"


def test_ensure_split_makes_then_reuses_the_data_folders_split(tmp_path):
    data = tmp_path / "data"
    for i in range(6):
        case = data / f"BraTS2021_{i:05d}"
        case.mkdir(parents=True)
        (case / f"{case.name}_flair.nii.gz").write_bytes(b"")
        if i < 5:  # case 5 has no segmentation: left out, as `brats split` does
            (case / f"{case.name}_seg.nii.gz").write_bytes(b"")
    split, path = ensure_split(data, seed=1)
    assert path == data / "split.csv" and len(split) == 5
    assert set(split.values()) == {"train", "validation", "test"}
    assert ensure_split(data, seed=99)[0] == split  # reused, not remade
    given = tmp_path / "mine.csv"
    given.write_text("case,split\nBraTS2021_00000,test\n")
    assert ensure_split(data, given) == ({"BraTS2021_00000": "test"}, given)
    with pytest.raises(BratsError, match="split file not found"):
        ensure_split(data, tmp_path / "missing.csv")


class _Cache:
    """The part of SliceCache that evaluate_slices and example_slices read."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self._images = {c: rng.normal(size=(3, 4, 4, 4)).astype(np.float32) for c in "ab"}
        self._labels = {c: np.zeros((3, 4, 4), np.uint8) for c in "ab"}
        self._labels["a"][1, :2, :2] = 2  # 4 pixels of edema on slice 1
        self._labels["b"][2, :1, :3] = 3  # 3 pixels of ET on slice 2
        self._labels["b"][0, 0, 0] = 1

    def images(self, case_id):
        return self._images[case_id]

    def labels(self, case_id):
        return self._labels[case_id]

    def slice_indices(self, case_id):
        return 20 + np.arange(3)  # a cache that starts at axial slice 20


class _Oracle:
    """A 'model' that predicts the labels a channel-0 fingerprint points to."""

    def __init__(self, cache, wrong: bool = False):
        self.table = [
            (img[..., 0], lab)
            for c in "ab"
            for img, lab in zip(cache._images[c], cache._labels[c], strict=True)
        ]
        self.wrong = wrong

    def predict(self, x, batch_size=32, verbose=0):
        out = []
        for image in x:
            labels = next(lab for key, lab in self.table if np.array_equal(key, image[..., 0]))
            labels = np.zeros_like(labels) if self.wrong else labels
            out.append(np.eye(4, dtype=np.float32)[labels])
        return np.stack(out)


def test_evaluate_slices_perfect_and_empty_predictions():
    cache = _Cache()
    perfect = evaluate_slices(_Oracle(cache), cache, ["a", "b"], ("t1", "flair"), progress=False)
    assert perfect["dice"] == 1.0 and perfect["region_dice_WT"] == 1.0
    assert perfect["n_slices"] == 6
    empty = evaluate_slices(_Oracle(cache, wrong=True), cache, ["a", "b"], ("t1",), progress=False)
    assert empty["dice_edema"] == 0.0 and empty["dice_enhancing"] == 0.0
    with pytest.raises(ValueError, match="unknown channels"):
        evaluate_slices(_Oracle(cache), cache, ["a"], ("pd",))


def test_example_slices_show_distinct_cases():
    images, labels, titles = example_slices(_Cache(), ["a", "b"], 3)
    assert titles == ["a, axial 21", "b, axial 22"]  # one slice per case, however many asked
    assert images.shape == (2, 4, 4, 4) and labels.shape == (2, 4, 4)
    assert np.count_nonzero(labels[0] == 2) == 4


def test_variant_records_round_trip(tmp_path):
    per_case = pd.DataFrame({"case": ["x", "y"], "dice_WT": [0.5, 1.0], "hd95_WT": [2.0, 4.0]})
    for number, name in (("03", "early4"), ("05", "early2")):
        record = variant_record(
            EXPERIMENTS[name], number, {"test": {"dice": 0.25}}, {"test": per_case}, epochs=2
        )
        write_json(tmp_path / f"{number}_metrics.json", record)
        write_csv(per_case, tmp_path / f"{number}_cases_test.csv")
    assert record["region_metrics"]["test"] == {"n_cases": 2, "dice_WT": 0.75, "hd95_WT": 3.0}
    slices = load_variant_metrics(tmp_path)
    assert slices.loc[("test", "early2"), "dice"] == 0.25
    regions = load_variant_metrics(tmp_path, "region_metrics")
    assert regions.loc[("test", "early4"), "hd95_WT"] == 3.0
    assert sorted(load_per_case(tmp_path, "test")) == ["early2", "early4"]
    assert load_per_case(tmp_path, "validation") == {}
    with pytest.raises(BratsError, match="run notebooks 03-05"):
        load_variant_metrics(tmp_path / "none")


def test_rank_cases_best_first():
    per_case = pd.DataFrame(
        {
            "case": ["a", "b", "c"],
            "dice_WT": [0.9, 1.0, 0.0],
            "dice_TC": [0.3, 1.0, 0.0],
            "dice_ET": [0.0, 0.7, 0.3],
        }
    )
    ranked = rank_cases(per_case)
    assert ranked["case"].tolist() == ["b", "a", "c"]
    assert ranked["mean_dice"].tolist() == pytest.approx([0.9, 0.4, 0.1])
    with pytest.raises(ValueError, match="dice_ET"):
        rank_cases(per_case.drop(columns="dice_ET"))


# --- the real thing ----------------------------------------------------------------------

EXPECTED_FIGURES = [
    "01_split_counts.png",
    "01_label_volumes.png",
    "01_intensity_histograms.png",
    "01_modalities.png",
    "01_viewer.png",
    "02_before_after.png",
    "02_intensity_after.png",
    "02_slice_label_stats.png",
    "06_slice_metrics_validation.png",
    "06_slice_metrics_test.png",
    "06_region_metrics_test.png",
    "06_hd95_test.png",
    "06_region_dice_boxes.png",
    "06_best_worst.png",
    "06_viewer.png",
    "07_study_summary.png",
    "03_modality_ablation.png",
    "04_mean_image.png",
    "04_channel_contrast.png",
    "04_vs_03.png",
    "05_vs_03.png",
    "07_study_vs_current.png",
    *(f"{n}_{kind}.png" for n in ("03", "04", "05") for kind in ("training_curves", "examples")),
]


#: Native log lines of TensorFlow start-up that must not reach a notebook.
NOISE = ("absl::InitializeLog", "cudart_stub", "oneDNN custom operations", "cuInit",
         "cpu_feature_guard", "cuda_platform")  # fmt: skip


def _assert_everything_shown_and_quiet(name: str, nb) -> None:
    """Every figure and viewer drawn in a cell is an image in the executed copy; no log
    noise on stderr; no bare object reprs."""
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        stderr = "".join(o.text for o in cell.outputs if o.get("name") == "stderr")
        assert not any(marker in stderr for marker in NOISE), (name, stderr[:300])
        if re.search(r"\bdisplay\((plot_\w+|viewer)\b", cell.source):
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, (name, "a drawing cell shows no image", cell.source[:80])
        if "display(Markdown(" in cell.source:  # "What we saw": text computed by the run
            texts = [o["data"]["text/markdown"] for o in cell.outputs
                     if "text/markdown" in o.get("data", {})]  # fmt: skip
            assert texts and all(t.strip() for t in texts), (name, "no computed text")
        for output in cell.outputs:
            data = output.get("data", {})
            if set(data) == {"text/plain"}:  # a bare repr, nothing richer to show
                plain = data["text/plain"]
                assert not plain.startswith(("PosixPath(", "VBox(", "<Figure")), (name, plain[:80])


def _digest(paths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """The data folder of the tiny runs: the TensorFlow series generates the profile's
    small synthetic cases (and notebook 01 their split); the other backends find them."""
    return tmp_path_factory.mktemp("tiny") / "data"


def _run_configs(out: Path) -> dict[str, dict]:
    """Every run folder's config.json the notebooks wrote (03-05 and the study's), by path."""
    return {
        str(path.relative_to(out)): json.loads(path.read_text())
        for path in sorted(out.rglob("config.json"))
        if (path.parent / "model.keras").is_file()
    }


def _run_on(backend, monkeypatch, backend_env, *args, **kwargs):
    """``run_notebooks(*args, **kwargs)`` in kernels that run the Keras ``backend``: the
    kernels inherit this process's environment, so ``KERAS_BACKEND`` set here is theirs."""
    require_backend(backend)
    for name, value in {**backend_env, "KERAS_BACKEND": backend}.items():
        monkeypatch.setenv(name, value)
    before = _digest(SOURCES)
    run = run_notebooks(*args, **kwargs)
    assert _digest(SOURCES) == before, "source notebooks must never be modified"
    for path in run.executed.values():
        nb = nbformat.read(path, as_version=4)
        errors = [
            o
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
            if o.output_type == "error"
        ]
        assert not errors
        _assert_everything_shown_and_quiet(path.stem, nb)
    return run


def _assert_variant_metrics(out: Path, number: str, experiment: str) -> None:
    """A training notebook's metrics: slice metrics in [0, 1], region metrics finite and in
    range, every test case scored, its model saved."""
    record = json.loads((out / "tables" / f"{number}_metrics.json").read_text())
    assert record["experiment"] == experiment
    for split in ("validation", "test"):
        slices = record["slice_metrics"][split]
        for key, value in slices.items():
            if key != "n_slices":
                assert 0.0 <= value <= 1.0, (number, split, key, value)
        regions = record["region_metrics"][split]
        for key, value in regions.items():
            assert math.isfinite(value), (number, split, key)
            if key.startswith(("dice", "sensitivity", "specificity")):
                assert 0.0 <= value <= 1.0, (number, split, key, value)
            if key.startswith("hd95"):
                assert 0.0 <= value <= 373.13, (number, split, key, value)
    cases = pd.read_csv(out / "tables" / f"{number}_cases_test.csv")
    assert cases["dice_WT"].between(0, 1).all() and (cases["status"] == "ok").all()
    assert (out / "runs" / experiment / "model.keras").is_file()


@pytest.fixture(scope="module")
def tiny_series(tiny_data, backend_env, tmp_path_factory) -> tuple[Path, object]:
    """The whole series, tiny profile, on TensorFlow (once for the module): its output
    folder and :class:`NotebookRun`."""
    out = tmp_path_factory.mktemp("tiny_series") / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        run = _run_on("tensorflow", monkeypatch, backend_env, "tiny", tiny_data, out)
    return out, run


@pytest.mark.slow
@pytest.mark.notebooks
def test_all_notebooks_run_with_the_tiny_profile(tiny_series, tiny_data):
    """Every notebook, tiny profile, TensorFlow kernels: no error output, every figure shown
    and written, no log noise, metrics in range, every model trained records TensorFlow."""
    out, run = tiny_series
    configs = _run_configs(out)
    assert {"runs/early4/config.json", "runs/mean4/config.json", "runs/early2/config.json"} < set(
        configs
    ), sorted(configs)  # and the study's
    for name, config in configs.items():
        assert config["backend"] == "tensorflow", name
        assert config["versions"]["backend"] == "tensorflow", name
    assert list(run.executed) == list(NOTEBOOKS)
    missing = [f for f in EXPECTED_FIGURES if not (out / "figures" / f).is_file()]
    assert not missing
    assert len(list(tiny_data.iterdir())) >= 6  # synthetic cases were generated
    shape = list(load_profile("tiny").synthetic_shape)
    assert json.loads((tiny_data / "synthetic.json").read_text())["shape"] == shape

    volumes = pd.read_csv(out / "tables" / "01_label_volumes.csv")
    assert (volumes[["NCR", "ED", "ET"]] >= 0).all().all() and len(volumes) == 6
    for number, experiment in (("03", "early4"), ("04", "mean4"), ("05", "early2")):
        _assert_variant_metrics(out, number, experiment)
    results = pd.read_csv(out / "tables" / "06_slice_metrics.csv")
    assert {"early4", "mean4", "early2", "baseline early2"} <= set(results["experiment"])
    summary = json.loads((out / "notebooks" / "run_summary.json").read_text())
    assert set(summary["seconds"]) == set(NOTEBOOKS) and summary["profile"] == "tiny"


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_training_notebook_runs_on_the_backend(
    backend, tiny_series, tiny_data, backend_env, tmp_path, monkeypatch
):
    """Notebook 05 (train, score slices and whole volumes, save, examples) in a kernel that
    runs JAX or PyTorch, on the TensorFlow series' data, split and slice cache: what differs
    between backends is the kernel's training, prediction and saving, not the data steps."""
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    for table in (tiny_series[0] / "tables").glob("03_*"):  # what 05 compares itself with
        shutil.copy(table, out / "tables")
    cache = tiny_series[0] / "cache"
    run = _run_on(backend, monkeypatch, backend_env, "tiny", tiny_data, out, only="05",
                  overrides={"cache_dir": str(cache)})  # fmt: skip
    assert list(run.executed) == ["05_unet_early_fusion_2mod"]
    configs = _run_configs(out)
    assert set(configs) == {"runs/early2/config.json"}, sorted(configs)
    config = configs["runs/early2/config.json"]
    assert config["backend"] == backend and config["versions"]["backend"] == backend
    figures = ["05_training_curves.png", "05_examples.png", "05_vs_03.png"]
    assert [f for f in figures if not (out / "figures" / f).is_file()] == []
    _assert_variant_metrics(out, "05", "early2")


def test_a_missing_data_folder_says_how_to_make_one(tmp_path):
    from brats_utils.notebooks.support import require_cases

    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(BratsError, match="brats synth --out data/synthetic"):
            require_cases(folder)


def test_the_full_profile_is_every_notebooks_defaults():
    """`auto`/named profiles replace only values left at their defaults: the full profile's."""
    import ast

    full = load_profile("full").parameters
    every_key = set().union(*(load_profile(p).parameters for p in PROFILES))
    assert every_key <= set(full), sorted(every_key - set(full))
    for path in SOURCES:
        declared = papermill.inspect_notebook(str(path))
        assert declared["profile"]["default"] == '"auto"', path.stem
        assert declared["out_dir"]["default"] == '""', path.stem
        for key, info in declared.items():
            if key in full:
                assert ast.literal_eval(info["default"]) == full[key], (path.stem, key)


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_the_profile_cell_passes_and_takes_back_every_parameter_a_profile_sets(path):
    import ast

    cell = nbformat.read(path, as_version=4).cells[3].source
    assign = next(n for n in ast.parse(cell).body if isinstance(n, ast.Assign))
    call = assign.value.func.value  # use_profile(...).values()
    assert call.func.id == "use_profile" and call.args[0].value == path.stem
    passed = [k.arg for k in call.keywords]
    profiled = set().union(*(load_profile(p).parameters for p in PROFILES))
    declared = set(papermill.inspect_notebook(str(path)))
    assert set(passed) == (declared & profiled) | {"out_dir"}
    assert [t.id for t in assign.targets[0].elts] == passed  # rebound in the same order


def test_use_profile_fills_what_was_left_at_its_default(monkeypatch, capsys):
    from brats_utils.notebooks import profile as profiles

    monkeypatch.setattr(profiles, "has_gpu", lambda: False)
    full, smoke = load_profile("full").parameters, load_profile("smoke").parameters
    values = profiles.use_profile(
        "03_unet_early_fusion_4mod", "auto", out_dir="", epochs=full["epochs"], base_filters=5
    )
    assert list(values) == ["out_dir", "epochs", "base_filters"]  # in the order given
    assert values["epochs"] == smoke["epochs"]
    assert values["base_filters"] == 5  # typed by the student: kept
    assert values["out_dir"] == "../outputs/smoke"  # where `make demo` writes
    assert "profile smoke (auto: no GPU" in capsys.readouterr().out
    monkeypatch.setattr(profiles, "has_gpu", lambda: True)
    values = profiles.use_profile("03", "auto", out_dir="/x", epochs=full["epochs"])
    assert values == {"out_dir": "/x", "epochs": full["epochs"]}
    with pytest.raises(BratsError, match="not one of auto"):
        profiles.use_profile("03", "fast")
