"""environment.yml (conda) and pyproject.toml must list the same requirements."""

from __future__ import annotations

import re
import tomllib

import yaml
from helpers import REPO_ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = project["dependencies"] + extras["tensorflow"] + extras["dev"]  # what conda installs
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.replace(" ", "") for r in pip_section if not r.startswith("-e")}


def test_environment_lists_the_same_packages_and_versions_as_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_environment_installs_the_project_itself():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip_section
    assert "python=3.11" in env["dependencies"]


def test_each_backend_is_an_extra_and_tensorflow_is_not_required():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert not any(_name(r) in {"tensorflow", "jax", "torch"} for r in project["dependencies"])
    extras = project["optional-dependencies"]
    assert {_name(r) for r in extras["tensorflow"]} == {"tensorflow"}
    assert {_name(r) for r in extras["jax"]} == {"jax"}
    assert {_name(r) for r in extras["torch"]} == {"torch"}
    assert "[tensorflow,dev]" in (REPO_ROOT / "Makefile").read_text()
