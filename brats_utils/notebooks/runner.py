"""Headless runs of the numbered notebooks with papermill (``brats notebooks``)."""

from __future__ import annotations

import ast
import contextlib
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from brats_utils.conventions import VOLUME_SHAPE
from brats_utils.data.cases import discover_cases
from brats_utils.errors import BratsError
from brats_utils.files import read_json, write_json
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.settings import TrainSettings

__all__ = [
    "NOTEBOOK_DIR",
    "NOTEBOOKS",
    "PROFILES",
    "Profile",
    "NotebookRun",
    "load_profile",
    "parse_param",
    "run_notebooks",
    "write_summary",
]

NOTEBOOK_DIR: Path = Path(__file__).resolve().parents[2] / "notebooks"
#: In the order they run (later ones read what earlier ones wrote).
NOTEBOOKS: tuple[str, ...] = (
    "01_exploration",
    "02_preprocessing",
    "03_unet_early_fusion_4mod",
    "04_unet_mean_fusion_4mod",
    "05_unet_early_fusion_2mod",
    "06_results",
    "07_beyond_the_baseline",
)
PROFILES: tuple[str, ...] = ("tiny", "smoke", "full")
#: Kernel installed for this interpreter when ``python3`` runs another Python.
FALLBACK_KERNEL = "brats-unet"
#: Python types a parameter's annotation allows (an int is a float too, a bool no int).
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


@dataclass(frozen=True)
class Profile:
    """A parameter profile; ``synthetic_cases`` ``None``: never generate cases."""

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
    """What :func:`run_notebooks` did: executed copies and seconds per notebook."""

    profile: str
    data_dir: Path
    out_dir: Path
    executed: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def load_profile(profile: str | Path) -> Profile:
    """A profile by name (``notebooks/params/<name>.yaml``) or YAML path, else a BratsError."""
    from papermill.iorw import read_yaml_file

    params_dir = NOTEBOOK_DIR / "params"
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = params_dir / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise BratsError(f"profile {str(profile)!r} not found at {path}; known profiles: {known}")
    try:
        raw = read_yaml_file(str(path)) or {}
    except yaml.YAMLError as exc:
        raise BratsError(f"profile {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise BratsError(f"profile {path}: expected a YAML mapping, found a {type(raw).__name__}")
    unknown = sorted(set(raw) - {f.name for f in fields(Profile) if f.name != "name"})
    parameters, minutes = raw.get("parameters") or {}, raw.get("minutes") or {}
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
    """``key=value``, the value read as YAML (``1e-4`` as a float, nothing as ``""``)."""
    from papermill.iorw import NoDatesSafeLoader

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise BratsError(f"--param expects key=value, got {text!r}")
    try:
        parsed = yaml.load(value, Loader=NoDatesSafeLoader) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str):
        with contextlib.suppress(ValueError):  # YAML reads 1e-4 as a string
            parsed = float(parsed)
    return key.strip(), parsed


def ensure_kernel() -> str:
    """The name of a Jupyter kernel that runs this Python, installed if needed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    major, minor = sys.version_info[:2]
    plain = {"python", f"python{major}", f"python{major}.{minor}"}
    for name in ("python3", FALLBACK_KERNEL):
        try:
            command = KernelSpecManager().get_kernel_spec(name).argv[0]
        except NoSuchKernel:
            continue
        if command in plain or Path(command).resolve() == Path(sys.executable).resolve():
            return name
    names = ["--name", FALLBACK_KERNEL, "--display-name", "Python (brats-unet)"]
    command = [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", *names]
    subprocess.run(command, check=True, capture_output=True)
    return FALLBACK_KERNEL


def ensure_data(data_dir: Path | str, profile: Profile) -> int:
    """The number of cases in ``data_dir``, generating the profile's cases into an empty one."""
    data_dir = Path(data_dir)
    found = len(discover_cases(data_dir)) if data_dir.is_dir() else 0
    if found:
        return found
    if not profile.synthetic_cases:
        raise BratsError(
            f"no BraTS cases in {data_dir}; profile {profile.name!r} needs real data "
            "(pass --data with the BraTS 2021 training folder)"
        )
    from brats_utils.data.synth import write_synthetic_dataset  # scipy: only when needed

    print(f"{data_dir} holds no cases: generating {profile.synthetic_cases} synthetic cases")
    write_synthetic_dataset(
        data_dir, profile.synthetic_cases, profile.synthetic_seed, shape=profile.synthetic_shape
    )
    return len(discover_cases(data_dir))


def select_notebooks(only: str | Sequence[str] | None = None) -> list[str]:
    """Notebooks by number or name (``"01,03"``, ``["02"]``), in run order; default all."""
    if not only:
        return list(NOTEBOOKS)
    items = only.split(",") if isinstance(only, str) else list(only)
    chosen = set()
    for item in (i.strip() for i in items if i.strip()):
        matches = [n for n in NOTEBOOKS if n == item or n.split("_")[0] == item.zfill(2)]
        if not matches:
            raise BratsError(f"--only {item!r} matches no notebook; notebooks: {NOTEBOOKS}")
        chosen.update(matches)
    if not chosen:
        raise BratsError(f"--only {only!r} names no notebook; notebooks: {NOTEBOOKS}")
    return [n for n in NOTEBOOKS if n in chosen]


def _declared_parameters(path: Path) -> dict[str, tuple[str, Any]]:
    """``{name: (type name, default)}`` of a notebook's parameters cell (non-literal: ``None``)."""
    import papermill

    declared = {}
    for name, spec in papermill.inspect_notebook(str(path)).items():
        try:
            default = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            default = None
        declared[name] = (spec["inferred_type_name"], default)
    return declared


def _check_parameters(
    parameters: Mapping[str, Any], declared: Mapping[str, Mapping[str, tuple[str, Any]]]
) -> None:
    """A BratsError naming the parameter if no notebook declares it, it has the wrong type, or
    it makes invalid settings; every notebook counts, not only the ``--only`` ones."""
    unknown = sorted(set(parameters) - {n for names in declared.values() for n in names})
    if unknown:
        raise BratsError(
            f"parameters {unknown} are not declared by any of the notebooks {list(declared)}"
        )
    defaults: dict[str, Any] = {}
    for notebook, specs in declared.items():
        for name, (type_name, default) in specs.items():
            defaults.setdefault(name, default)
            allowed, value = _TYPES.get(type_name), parameters.get(name)
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


def run_notebooks(
    profile: str | Path | Profile,
    data_dir: Path | str | None = None,
    out_dir: Path | str | None = None,
    *,
    only: str | Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    log_output: bool = False,
) -> NotebookRun:
    """Run the numbered notebooks in order with papermill; ``BratsError`` before any run for an
    unknown profile, notebook or parameter or missing data, and for a failing notebook (naming
    its executed copy, which holds the traceback)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    profile = profile if isinstance(profile, Profile) else load_profile(profile)
    data_dir = Path(data_dir if data_dir is not None else "data/synthetic").resolve()
    out_dir = Path(out_dir if out_dir is not None else f"outputs/{profile.name}").resolve()
    for option, folder in (("--data", data_dir), ("--out", out_dir)):
        if folder.exists() and not folder.is_dir():
            raise BratsError(f"{option} {folder} is a file; expected a folder")
    names = select_notebooks(only)
    sources = {name: NOTEBOOK_DIR / f"{name}.ipynb" for name in NOTEBOOKS}  # never overwritten
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise BratsError(f"source notebooks not found: {missing} (run from a source checkout)")
    declared = {name: _declared_parameters(path) for name, path in sources.items()}
    parameters = {**profile.parameters, **(overrides or {})}
    _check_parameters(parameters, declared)
    n_cases = ensure_data(data_dir, profile)
    kernel = ensure_kernel()
    run = NotebookRun(profile=profile.name, data_dir=data_dir, out_dir=out_dir)
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    print(f"profile {profile.name}: {profile.description}")
    print(f"{n_cases} cases in {data_dir}; outputs in {out_dir}; kernel {kernel}")
    # the profile by name, so that the notebook's own `profile` (auto) changes nothing
    named = profile.name if profile.name in PROFILES else "custom"
    given = {"profile": named, "data_dir": str(data_dir), "out_dir": str(out_dir), **parameters}
    for number, name in enumerate(names, start=1):
        target = out_dir / "notebooks" / f"{name}.ipynb"
        print(f"[{number}/{len(names)}] {name}", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(sources[name]),
                str(target),
                parameters={k: v for k, v in given.items() if k in declared[name]},
                kernel_name=kernel,
                progress_bar=True,
                log_output=log_output,
                cwd=str(NOTEBOOK_DIR),
            )
        except PapermillExecutionError as exc:
            raise BratsError(
                f"notebook {name} failed in cell {exc.exec_count}: {exc.ename}: "
                f"{exc.evalue}; the executed copy with the traceback is {target}"
            ) from exc
        run.executed[name] = target
        run.seconds[name] = round(time.perf_counter() - start, 1)
        print(f"    done in {run.seconds[name]:.0f} s -> {target}", flush=True)
    write_summary(run, parameters)
    return run


def write_summary(run: NotebookRun, parameters: Mapping[str, Any]) -> None:
    """Write ``OUT_DIR/notebooks/run_summary.json`` (a partial run updates its entries)."""
    path = run.out_dir / "notebooks" / "run_summary.json"
    seconds, executed = dict(run.seconds), {k: str(v) for k, v in run.executed.items()}
    if path.is_file():
        earlier = read_json(path, "run summary")
        if earlier.get("profile") == run.profile and earlier.get("data_dir") == str(run.data_dir):
            seconds = {**earlier.get("seconds", {}), **seconds}
            executed = {**earlier.get("executed", {}), **executed}
    order = sorted(seconds, key=lambda n: NOTEBOOKS.index(n) if n in NOTEBOOKS else len(NOTEBOOKS))
    summary = {
        "profile": run.profile,
        "data_dir": str(run.data_dir),
        "out_dir": str(run.out_dir),
        "parameters": dict(parameters),
        "seconds": {name: seconds[name] for name in order},
        "total_seconds": round(sum(seconds.values()), 1),
        "executed": {name: executed[name] for name in order if name in executed},
    }
    write_json(path, summary)
