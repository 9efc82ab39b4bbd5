"""Headless runs of the numbered notebooks with papermill (``brats notebooks``).

A *profile* (``notebooks/params/<name>.yaml``) holds the parameters injected into the
notebooks' ``parameters`` cells and, for ``smoke``/``tiny``, how many synthetic cases to
generate when the data folder is empty::

    description: ...
    synthetic_cases: 24      # null: never generate (full profile: real data required)
    synthetic_seed: 0
    synthetic_shape: [64, 64, 40]  # optional; default BraTS's 240 x 240 x 155
    parameters:              # every key must be a parameter of at least one notebook
      image_size: 64
      epochs: 4

Each notebook gets only the parameters it declares, plus ``data_dir`` and ``out_dir``.
Executed copies go to ``OUT_DIR/notebooks/`` (the sources are never overwritten); the
notebooks write figures to ``OUT_DIR/figures/`` and tables to ``OUT_DIR/tables/``
(:class:`brats_utils.notebooks.support.OutputPaths`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brats_utils.conventions import VOLUME_SHAPE
from brats_utils.errors import BratsError
from brats_utils.notebooks.summary import write_summary

__all__ = [
    "NOTEBOOK_DIR",
    "NOTEBOOKS",
    "PROFILES",
    "Profile",
    "NotebookRun",
    "load_profile",
    "parse_param",
    "ensure_kernel",
    "ensure_data",
    "select_notebooks",
    "run_notebooks",
]

#: The source notebooks (next to the package in a source checkout).
NOTEBOOK_DIR: Path = Path(__file__).resolve().parents[2] / "notebooks"
#: The numbered notebooks, in the order they run (later ones read what earlier ones wrote).
NOTEBOOKS: tuple[str, ...] = (
    "01_exploration",
    "02_preprocessing",
    "03_unet_early_fusion_4mod",
    "04_unet_mean_fusion_4mod",
    "05_unet_early_fusion_2mod",
    "06_results",
    "07_beyond_the_seed",
)
#: Profiles shipped in ``notebooks/params``.
PROFILES: tuple[str, ...] = ("tiny", "smoke", "full")
#: Kernel name installed for this interpreter when ``python3`` resolves to another Python.
FALLBACK_KERNEL = "brats-unet"


@dataclass(frozen=True)
class Profile:
    """A parameter profile.

    Attributes:
        name: profile name (file stem).
        description: one line saying what it is for.
        synthetic_cases: cases to generate into an empty data folder; ``None``: never.
        synthetic_seed: seed of the generated cases.
        synthetic_shape: their volume shape (default BraTS's 240 x 240 x 155).
        parameters: notebook parameters (name -> value).
        minutes: measured minutes per notebook (name -> minutes), from a run's
            ``run_summary.json`` (``scripts/profile_minutes.py``); empty when not measured.
        measured: where and how ``minutes`` were measured (machine, command, date).
    """

    name: str
    description: str
    synthetic_cases: int | None
    synthetic_seed: int
    parameters: dict[str, Any]
    minutes: dict[str, float] = field(default_factory=dict)
    measured: str = ""
    synthetic_shape: tuple[int, int, int] = VOLUME_SHAPE


@dataclass
class NotebookRun:
    """What :func:`run_notebooks` did: executed notebooks, seconds each, output folders."""

    profile: str
    data_dir: Path
    out_dir: Path
    executed: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def figures(self) -> list[Path]:
        """Figures written under ``OUT_DIR/figures``."""
        return sorted((self.out_dir / "figures").glob("*.png"))

    @property
    def tables(self) -> list[Path]:
        """Tables written under ``OUT_DIR/tables``."""
        folder = self.out_dir / "tables"
        return sorted(p for p in folder.glob("*") if p.suffix in (".csv", ".json"))


def load_profile(profile: str | Path, params_dir: Path | str | None = None) -> Profile:
    """Read a profile by name (``notebooks/params/<name>.yaml``) or from a YAML path.

    Raises:
        BratsError: unknown profile, unreadable YAML, or a malformed profile.
    """
    import yaml

    params_dir = Path(params_dir) if params_dir is not None else NOTEBOOK_DIR / "params"
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = params_dir / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise BratsError(f"profile {str(profile)!r} not found at {path}; known profiles: {known}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise BratsError(f"profile {path} is not valid YAML: {exc}") from exc
    keys = {"description", "synthetic_cases", "synthetic_seed", "synthetic_shape", "parameters"}
    keys |= {"minutes", "measured"}
    unknown = sorted(set(raw) - keys)
    parameters = raw.get("parameters") or {}
    minutes = raw.get("minutes") or {}
    if unknown or not isinstance(parameters, dict) or not isinstance(minutes, dict):
        raise BratsError(
            f"profile {path}: expected keys description, synthetic_cases, synthetic_seed, "
            "synthetic_shape, a 'parameters' mapping and optionally 'minutes' and 'measured'; "
            f"found unknown keys {unknown}"
        )
    cases = raw.get("synthetic_cases")
    return Profile(
        name=path.stem,
        description=str(raw.get("description", "")),
        synthetic_cases=None if cases is None else int(cases),
        synthetic_seed=int(raw.get("synthetic_seed", 0)),
        parameters=dict(parameters),
        minutes={str(k): float(v) for k, v in minutes.items()},
        measured=str(raw.get("measured", "")),
        synthetic_shape=tuple(int(n) for n in raw.get("synthetic_shape", VOLUME_SHAPE)),
    )


def parse_param(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value is read as YAML (typed).

    ``epochs=3`` -> ``("epochs", 3)``, ``learning_rate=1e-4`` -> ``("learning_rate", 0.0001)``,
    ``tta=true`` -> ``("tta", True)``, ``loss=dice_ce`` ->
    ``("loss", "dice_ce")``.

    Raises:
        BratsError: no ``=`` or an empty key.
    """
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise BratsError(f"--param expects key=value, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str):
        try:
            parsed = float(parsed)  # YAML 1.1 reads 1e-4 as a string
        except ValueError:
            pass
    return key.strip(), parsed


def ensure_kernel(kernel_name: str = "python3") -> str:
    """A Jupyter kernel that runs *this* Python (the virtual environment's), by name.

    ``python3`` is used when its kernelspec starts ``python`` (which jupyter_client maps to
    ``sys.executable``) or this very interpreter. Otherwise a kernelspec for this interpreter
    is installed into ``sys.prefix`` (``python -m ipykernel install --sys-prefix``) under
    :data:`FALLBACK_KERNEL` and that name is returned.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    for name in (kernel_name, FALLBACK_KERNEL):
        try:
            command = manager.get_kernel_spec(name).argv[0]
        except NoSuchKernel:
            continue
        versions = sys.version_info
        plain = {"python", f"python{versions[0]}", f"python{versions[0]}.{versions[1]}"}
        if command in plain or Path(command).resolve() == Path(sys.executable).resolve():
            return name
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--sys-prefix",
            "--name",
            FALLBACK_KERNEL,
            "--display-name",
            "Python (brats-unet)",
        ],
        check=True,
        capture_output=True,
    )
    return FALLBACK_KERNEL


def ensure_data(data_dir: Path | str, profile: Profile, *, progress: bool = True) -> int:
    """Make sure ``data_dir`` holds cases; generate synthetic ones if the profile allows.

    Returns:
        The number of cases found (after generating, if it did).

    Raises:
        BratsError: no cases and the profile does not generate any (e.g. ``full``).
    """
    from brats_utils.data.cases import discover_cases

    data_dir = Path(data_dir)
    found = len(discover_cases(data_dir)) if data_dir.is_dir() else 0
    if found:
        return found
    if not profile.synthetic_cases:
        raise BratsError(
            f"no BraTS cases in {data_dir}; profile {profile.name!r} needs real data "
            "(pass --data with the BraTS 2021 training folder)"
        )
    from brats_utils.data.synth import write_synthetic_dataset

    print(f"{data_dir} holds no cases: generating {profile.synthetic_cases} synthetic cases")
    write_synthetic_dataset(
        data_dir,
        profile.synthetic_cases,
        profile.synthetic_seed,
        shape=profile.synthetic_shape,
        progress=progress,
    )
    return len(discover_cases(data_dir))


def select_notebooks(only: str | Sequence[str] | None = None) -> list[str]:
    """Notebook names selected by numbers or names (``"01,03"``, ``["02"]``); default all.

    Raises:
        BratsError: a selector that matches no notebook.
    """
    if not only:
        return list(NOTEBOOKS)
    items = only.split(",") if isinstance(only, str) else list(only)
    chosen = set()
    for item in (i.strip() for i in items if i.strip()):
        matches = [n for n in NOTEBOOKS if n == item or n.split("_")[0] == item.zfill(2)]
        if not matches:
            raise BratsError(f"--only {item!r} matches no notebook; notebooks: {NOTEBOOKS}")
        chosen.update(matches)
    return [n for n in NOTEBOOKS if n in chosen]


def _declared_parameters(path: Path) -> dict[str, tuple[str, Any]]:
    """``{name: (type name, default)}`` of a notebook's ``parameters`` cell (papermill's view:
    the type from the annotation, the default as a Python literal, ``None`` if not one)."""
    import ast

    import papermill

    declared = {}
    for name, spec in papermill.inspect_notebook(str(path)).items():
        try:
            default = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            default = None
        declared[name] = (spec["inferred_type_name"], default)
    return declared


#: Python types a parameter's annotation allows (an int is a float too, a bool no int).
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)
}  # fmt: skip


def _source_notebooks(names: Sequence[str], notebook_dir: Path) -> dict[str, Path]:
    """``{name: path}`` of the source notebooks; raises BratsError if any is missing."""
    sources = {name: notebook_dir / f"{name}.ipynb" for name in names}
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise BratsError(f"source notebooks not found: {missing} (run from a source checkout)")
    return sources


def _checked_parameters(
    parameters: dict[str, Any], declared: Mapping[str, Mapping[str, tuple[str, Any]]]
) -> dict[str, Any]:
    """``parameters`` if every one is declared by a notebook, of its type, and makes valid
    settings; else a BratsError naming the parameter, before any notebook runs.

    Checked against all numbered notebooks, not only those ``--only`` selects: a profile holds
    the parameters of the whole series, and each notebook gets the ones it declares. The
    values go through the notebooks' own settings builders
    (:meth:`~brats_utils.preprocessing.settings.PreprocessSettings.from_parameters`,
    :meth:`~brats_utils.training.settings.TrainSettings.from_parameters`), over the
    notebooks' defaults.
    """
    from brats_utils.preprocessing.settings import PreprocessSettings
    from brats_utils.training.settings import TrainSettings

    unknown = sorted(set(parameters) - {n for names in declared.values() for n in names})
    if unknown:
        raise BratsError(
            f"parameters {unknown} are not declared by any of the notebooks {list(declared)}"
        )
    defaults: dict[str, Any] = {}
    for notebook, specs in declared.items():
        for name, (type_name, default) in specs.items():
            defaults.setdefault(name, default)
            allowed = _TYPES.get(type_name)
            value = parameters.get(name)
            if name not in parameters or allowed is None:
                continue
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise BratsError(
                    f"parameter {name}={value!r}: notebook {notebook} declares it {type_name}"
                )
    merged = {**defaults, **parameters}
    try:
        PreprocessSettings.from_parameters(merged)
        TrainSettings.from_parameters(merged)
    except (TypeError, ValueError) as exc:
        raise BratsError(f"notebook parameters: {exc}") from exc
    return parameters


def _execute(
    source: Path,
    target: Path,
    parameters: Mapping[str, Any],
    kernel: str,
    progress: bool,
    log_output: bool,
) -> None:
    """Run one notebook with papermill; a failing cell becomes a BratsError naming the copy."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=dict(parameters),
            kernel_name=kernel,
            progress_bar=progress,
            log_output=log_output,
            cwd=str(source.parent),
        )
    except PapermillExecutionError as exc:
        raise BratsError(
            f"notebook {source.stem} failed in cell {exc.exec_count}: {exc.ename}: "
            f"{exc.evalue}; the executed copy with the traceback is {target}"
        ) from exc


def run_notebooks(
    profile: str | Path | Profile,
    data_dir: Path | str | None = None,
    out_dir: Path | str | None = None,
    *,
    only: str | Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    notebook_dir: Path | str | None = None,
    kernel_name: str | None = None,
    progress: bool = True,
    log_output: bool = False,
) -> NotebookRun:
    """Run the numbered notebooks in order with papermill.

    Args:
        profile: profile name (``tiny``, ``smoke``, ``full``), YAML path or :class:`Profile`.
        data_dir: folder of BraTS cases (default ``data/synthetic``); filled with synthetic
            cases when empty and the profile allows it.
        out_dir: output folder (default ``outputs/<profile>``): ``notebooks/`` (executed
            copies), ``figures/``, ``tables/``, ``cache/``, ``runs/``, ``predictions/``.
        only: run only these notebooks (numbers or names, see :func:`select_notebooks`);
            earlier outputs they read must already be in ``out_dir``.
        overrides: parameters that replace the profile's (``--param key=value``).
        notebook_dir: where the source notebooks are (default :data:`NOTEBOOK_DIR`).
        kernel_name: Jupyter kernel (default: see :func:`ensure_kernel`).
        progress: papermill's per-cell progress bar and a line per notebook.
        log_output: stream the notebooks' own output to the log.

    Returns:
        A :class:`NotebookRun`; ``OUT_DIR/notebooks/run_summary.json`` records the same.

    Raises:
        BratsError: unknown profile/notebook/parameter, missing data, or a notebook that
            failed (the message names it and its executed copy, which holds the traceback).
    """
    profile = profile if isinstance(profile, Profile) else load_profile(profile)
    notebook_dir = Path(notebook_dir) if notebook_dir is not None else NOTEBOOK_DIR
    data_dir = Path(data_dir if data_dir is not None else "data/synthetic").resolve()
    out_dir = Path(out_dir if out_dir is not None else f"outputs/{profile.name}").resolve()
    for option, folder in (("--data", data_dir), ("--out", out_dir)):
        if folder.exists() and not folder.is_dir():
            raise BratsError(f"{option} {folder} is a file; expected a folder")
    names = select_notebooks(only)
    every = _source_notebooks(NOTEBOOKS, notebook_dir)  # a profile serves every notebook
    declared = {name: _declared_parameters(path) for name, path in every.items()}
    parameters = _checked_parameters({**profile.parameters, **(overrides or {})}, declared)
    sources = {name: every[name] for name in names}
    n_cases = ensure_data(data_dir, profile, progress=progress)
    kernel = kernel_name or ensure_kernel()
    run = NotebookRun(profile=profile.name, data_dir=data_dir, out_dir=out_dir)
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"profile {profile.name}: {profile.description}")
        print(f"{n_cases} cases in {data_dir}; outputs in {out_dir}; kernel {kernel}")
    for number, name in enumerate(names, start=1):
        # the profile by name, so the notebook's own `profile` (auto) changes nothing
        named = profile.name if profile.name in PROFILES else "custom"
        given = {"profile": named, "data_dir": str(data_dir), "out_dir": str(out_dir), **parameters}
        params = {k: v for k, v in given.items() if k in declared[name]}
        target = out_dir / "notebooks" / f"{name}.ipynb"
        if progress:
            print(f"[{number}/{len(names)}] {name}", flush=True)
        start = time.perf_counter()
        _execute(sources[name], target, params, kernel, progress, log_output)
        run.executed[name] = target
        run.seconds[name] = round(time.perf_counter() - start, 1)
        if progress:
            print(f"    done in {run.seconds[name]:.0f} s -> {target}", flush=True)
    write_summary(run, parameters, order=NOTEBOOKS)
    return run
