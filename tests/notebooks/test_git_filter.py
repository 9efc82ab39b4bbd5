"""`make setup` keeps committed notebooks clean: nbstripout as a git filter (`git-filter`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(
    not (BIN / "nbstripout").exists() or shutil.which("make") is None or not shutil.which("git"),
    reason="needs nbstripout in this environment (make setup installs it), make and git",
)
def test_a_lesson_leaves_nothing_to_commit(tmp_path):
    repo = tmp_path / "clone"
    shutil.copytree(ROOT / "notebooks", repo / "notebooks")
    shutil.copy(ROOT / ".gitattributes", repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone")
    make = ["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(repo), "git-filter"]
    subprocess.run([*make, f"BIN={BIN}"], check=True)
    assert _git(repo, "status", "--porcelain") == ""  # installing the filter changes nothing
    # what running every cell in JupyterLab writes into a notebook
    path = repo / "notebooks" / "01_exploration.ipynb"
    nb = nbformat.read(path, 4)
    nb.metadata.language_info.update(version="3.11.9", pygments_lexer="ipython3")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = 7
            cell.outputs = [nbformat.v4.new_output("stream", text="a result\n")]
            cell.metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    nbformat.write(nb, path)
    assert _git(repo, "diff") == ""
    _git(repo, "add", "-A")  # git status may list the file until then: its blob is unchanged
    assert _git(repo, "status", "--porcelain") == ""
