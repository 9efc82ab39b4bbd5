"""The ``brats`` command line: ``check`` and ``split``, ``--help``, and no heavy imports."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_utils.cli.main import COMMANDS, main
from brats_utils.conventions import LEGACY, MODALITIES
from brats_utils.data.split import load_split

SHAPE = (240, 240, 155)  # `brats check` expects the BraTS volume shape
REPO_ROOT = Path(__file__).resolve().parents[2]


def write_case(root: Path, case_id: str, *, seg: bool = True) -> Path:
    """A full-size but nearly empty case (compresses to a few kB per file)."""
    folder = root / case_id
    folder.mkdir(parents=True)
    image = np.zeros(SHAPE, np.int16)
    image[100:140, 100:140, 60:90] = 500
    kinds = list(MODALITIES) + (["seg"] if seg else [])
    for kind in kinds:
        data = image if kind != "seg" else (image > 0).astype(np.uint8) * 4
        nib.save(nib.Nifti1Image(data, np.eye(4)), folder / LEGACY.file_name(case_id, kind))
    return folder


@pytest.fixture(scope="module")
def good_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good")
    write_case(root, "BraTS2021_00000")
    write_case(root, "BraTS2021_00001")
    write_case(root, "BraTS2021_00002")
    return root


def test_check_a_good_folder_prints_ok_lines_and_exits_0(good_root, capsys):
    assert main(["check", str(good_root), "--require-seg"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "ok    BraTS2021_00000",
        "ok    BraTS2021_00001",
        "ok    BraTS2021_00002",
        "3 cases, 3 ok, 0 invalid",
    ]
    assert main(["check", str(good_root), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == ["3 cases, 3 ok, 0 invalid"]


def test_check_a_bad_folder_names_case_and_file_and_exits_1(tmp_path, capsys):
    write_case(tmp_path, "BraTS2021_00000")
    bad = write_case(tmp_path, "BraTS2021_00001", seg=False)
    (bad / "BraTS2021_00001_t2.nii.gz").unlink()
    assert main(["check", str(tmp_path), "--quiet"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"error BraTS2021_00001: t2 file missing (expected BraTS2021_00001_t2.nii.gz) ({bad})",
        "2 cases, 1 ok, 1 invalid",
    ]
    assert main(["check", str(tmp_path), "--require-seg", "--workers", "2"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok    BraTS2021_00000"
    assert len(out) == 4 and "seg file missing" in out[2]


def test_check_warnings_alone_do_not_fail(tmp_path, capsys):
    folder = write_case(tmp_path, "BraTS20_Training_355", seg=False)
    stray = folder / "W39_1998.09.19_Segm.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), stray)
    assert main(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("warn  BraTS20_Training_355: unrecognised NIfTI file")
    assert out[0].endswith(f"({stray})")
    assert out[1] == "1 cases, 1 ok (1 with warnings), 0 invalid"


def test_check_a_missing_or_empty_folder_is_a_user_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: DATA_DIR {tmp_path / 'nowhere'} not found"), err
    assert main(["check", str(tmp_path)]) == 2
    assert "no case folders found" in capsys.readouterr().err


def test_split_writes_the_csv_and_refuses_to_replace_a_different_one(good_root, tmp_path, capsys):
    out = tmp_path / "split.csv"
    assert main(["split", str(good_root), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(
        f"train 1, validation 1, test 1 (3 cases, seed 2021) -> {out}"
    )
    first = load_split(out)
    assert main(["split", str(good_root), "--out", str(out)]) == 0  # same split: fine
    assert "unchanged" in capsys.readouterr().out
    different = next(s for s in range(1, 50) if s != 2021 and _split_with(good_root, s) != first)
    assert main(["split", str(good_root), "--out", str(out), "--seed", str(different)]) == 2
    assert "--force" in capsys.readouterr().err
    assert load_split(out) == first
    args = ["split", str(good_root), "--out", str(out), "--seed", str(different), "--force"]
    assert main(args) == 0
    assert load_split(out) == _split_with(good_root, different)


def _split_with(root: Path, seed: int) -> dict[str, str]:
    from brats_utils.data.split import make_split

    return make_split([p.name for p in root.iterdir() if p.is_dir()], seed=seed)


def test_split_default_output_and_unlabelled_data(tmp_path, capsys):
    write_case(tmp_path / "labelled", "BraTS2021_00000")
    assert main(["split", str(tmp_path / "labelled")]) == 0
    assert load_split(tmp_path / "labelled" / "split.csv") == {"BraTS2021_00000": "train"}
    write_case(tmp_path / "unlabelled", "BraTS2021_00009", seg=False)
    assert main(["split", str(tmp_path / "unlabelled")]) == 2
    assert "has a segmentation" in capsys.readouterr().err


def test_every_command_module_is_registered():
    import brats_utils.cli

    modules = {m.name for m in pkgutil.iter_modules(brats_utils.cli.__path__)}
    assert modules - {"main", "args"} == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_works_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: brats {command}")


_PROBE = """
import runpy, sys
sys.argv = ["brats", *sys.argv[1:]]
try:
    runpy.run_module("brats_utils", run_name="__main__")
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "jax", "torch"})
print("HEAVY", heavy, "EXIT", code)
"""


@pytest.mark.parametrize("args", [["--help"], ["check", "{root}"]])
def test_help_and_check_do_not_import_tensorflow_or_keras(args, good_root):
    argv = [a.format(root=good_root) for a in args]
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.splitlines()[-1] == "HEAVY [] EXIT 0", result.stdout + result.stderr


#: Runs ``brats ARGS`` with the package ``sys.argv[1]`` made uninstalled: every import of it
#: (or of a submodule) fails exactly as when it is not installed (ModuleNotFoundError, its name).
_WITHOUT_PACKAGE = """
import runpy, sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

BLOCKED = sys.argv.pop(1)
sys.meta_path.insert(0, NotInstalled())
sys.argv = ["brats", *sys.argv[1:]]
runpy.run_module("brats_utils", run_name="__main__")
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_missing_keras_backend_names_the_extra_to_install(backend, tmp_path):
    """Every backend installed here or not, its package is made to fail to import."""
    import os

    from helpers import write_tiny_case

    from brats_utils.preprocessing.cache_build import build_cache
    from brats_utils.preprocessing.settings import PreprocessSettings

    write_tiny_case(tmp_path / "data", "Brats18_TEST_1_1")
    settings = PreprocessSettings(size=16, slice_start=0, slice_stop=None)
    build_cache(tmp_path / "data", tmp_path / "cache", settings, progress=False,
                expected_shape=None)  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-c", _WITHOUT_PACKAGE, backend, "train", "--experiment",
               "early2", "--cache", str(tmp_path / "cache"), "--out",
               str(tmp_path / "run")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"the Keras backend {backend!r} needs {backend!r}" in result.stderr, result.stderr
    assert f"pip install -e '.[{backend}]'" in result.stderr  # the extra that installs it
    assert not (tmp_path / "run").exists()
