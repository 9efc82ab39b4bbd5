"""One profile everywhere: an interactive "Run All" gets the ``brats notebooks`` settings."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from brats_utils.errors import BratsError
from brats_utils.notebooks.runner import PROFILES, Profile, load_profile
from brats_utils.notebooks.support import native_logs_to

__all__ = ["has_gpu", "use_profile", "time_estimate"]


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


def use_profile(notebook: str, profile: str = "auto", **parameters: Any) -> dict[str, Any]:
    """``parameters`` with ``profile`` applied: ``auto`` is ``smoke`` without a GPU, ``full``
    with one; ``custom`` changes nothing. Only values still at their default take the
    profile's; an empty ``out_dir`` becomes ``../outputs/<profile>``."""
    values = dict(parameters)
    if profile == "auto":
        name, why = ("full", "auto: a GPU was found") if has_gpu() else ("smoke", "auto: no GPU")
    elif profile in (*PROFILES, "custom"):
        name, why = profile, "chosen"
    else:
        raise BratsError(f"profile {profile!r} is not one of auto, {', '.join(PROFILES)}")
    if name == "custom":
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
    """A line with the profile's measured minutes for ``notebook`` and all, or saying none."""
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
