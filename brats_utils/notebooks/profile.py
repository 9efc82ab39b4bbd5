"""One profile everywhere: an interactive "Run All" gets the settings ``brats notebooks`` uses.

Every numbered notebook declares ``profile: str = "auto"`` and passes it, with the parameters
a profile may set, to :func:`use_profile` right after its parameters. ``auto`` means the
``smoke`` profile on a machine without a GPU (minutes on a laptop) and ``full`` (the seed's
settings) with one; ``tiny``, ``smoke`` or
``full`` name one (``brats notebooks`` passes the name it runs; ``custom`` for a profile
file, whose parameters it passes itself). Every parameter the profile sets and the
notebook's parameter cell still holds at its default (the ``full`` profile's value, tested)
takes the profile's value; a value a student typed, or one papermill injected, stays. An
empty ``out_dir`` becomes ``../outputs/<profile>``, the folder ``make demo`` and ``brats
notebooks --profile NAME`` write, so 06 finds what 03-05 saved whichever way they ran. No
Keras import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from brats_utils.errors import BratsError
from brats_utils.notebooks.runner import PROFILES, Profile, load_profile
from brats_utils.notebooks.support import native_logs_to

__all__ = ["has_gpu", "resolve_profile", "use_profile", "time_estimate"]


def has_gpu() -> bool:
    """True if ``nvidia-smi`` lists a GPU (no deep-learning framework is imported)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return False
    try:
        listed = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def resolve_profile(name: str) -> tuple[str, str]:
    """``(profile, why)``: ``auto`` resolved by the device, or the name checked.

    Raises:
        BratsError: a name that is neither ``auto`` nor a profile.
    """
    if name == "auto":
        return ("full", "auto: a GPU was found") if has_gpu() else ("smoke", "auto: no GPU")
    if name not in (*PROFILES, "custom"):
        raise BratsError(f"profile {name!r} is not one of auto, {', '.join(PROFILES)}")
    return name, "chosen"


def use_profile(notebook: str, profile: str = "auto", **parameters: Any) -> dict[str, Any]:
    """The notebook's parameters with its ``profile`` applied (see the module).

    Also sends TensorFlow's native start-up lines to ``OUT_DIR/logs/``
    (:func:`~brats_utils.notebooks.support.native_logs_to`).

    Args:
        notebook: the notebook's name (``"03_unet_early_fusion_4mod"``), for the message.
        profile: the notebook's ``profile`` parameter.
        **parameters: ``out_dir`` and the parameter cell's values a profile may set, by name.

    Returns:
        ``parameters`` in the order given: those still at their default take the profile's
        value, an empty ``out_dir`` becomes ``../outputs/<profile>``. A line says which
        profile, why, on which device, and what changed.
    """
    values = dict(parameters)
    name, why = resolve_profile(profile)
    if name == "custom":  # `brats notebooks` with a profile file: it set every parameter
        print(f"{notebook}: a custom profile; outputs in {values.get('out_dir')}")
    else:
        chosen, defaults = load_profile(name), load_profile("full").parameters
        changed = [
            key
            for key, value in chosen.parameters.items()
            if key in values and values[key] == defaults.get(key, value) != value
        ]
        values.update({key: chosen.parameters[key] for key in changed})
        values["out_dir"] = values.get("out_dir") or f"../outputs/{name}"
        if not why.startswith("auto"):  # auto's reason already names the device
            why += ", on a GPU" if has_gpu() else ", on the CPU"
        print(f"{notebook}: profile {name} ({why}): {chosen.description}")
        print(f"  {time_estimate(chosen, notebook)}")
        print(f"  outputs in {values['out_dir']}; from the profile: {', '.join(changed) or '-'}")
    if values.get("out_dir"):
        native_logs_to(values["out_dir"])
    return values


def time_estimate(profile: Profile, notebook: str) -> str:
    """``"about 3 min (all notebooks: 14 min), measured on ..."`` from the profile's
    measured minutes, or a line saying they were not measured."""
    if notebook not in profile.minutes:
        return f"time: not measured for {notebook} with the {profile.name} profile"
    total = sum(profile.minutes.values())
    line = (
        f"time: about {profile.minutes[notebook]:.1f} min (all notebooks: {total:.0f} min) on an "
        f"idle machine, measured {profile.measured or 'once'}"
    )
    cores, busy = os.cpu_count() or 1, os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if busy > cores / 2:  # other work shares the cores: the minutes above stretch
        line += f"; this machine is busy now ({busy:.1f} processes running on {cores} cores)"
    return line
