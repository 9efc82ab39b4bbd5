"""What produced a result: versions of Python, the libraries and the Keras backend."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["PACKAGES", "BACKENDS", "keras_backend", "missing_backend", "versions"]

PACKAGES: tuple[str, ...] = (
    "numpy",
    "keras",
    "tensorflow",
    "jax",
    "torch",
    "nibabel",
    "scipy",
    "matplotlib",
    "papermill",
)


#: The Keras backends: each is the name of its package and of the extra that installs it.
BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")


def missing_backend(package: str | None) -> str | None:
    """What to tell a user whose Keras backend ``package`` is not installed, else ``None``."""
    top = (package or "").split(".")[0]
    if top not in BACKENDS:
        return None
    return (
        f"the Keras backend {keras_backend()!r} needs {top!r}, which is not installed: pip "
        f"install -e '.[{top}]'. Or use a backend you have: KERAS_BACKEND=tensorflow|jax|torch, "
        "each installed by its extra, '.[tensorflow]' (the default), '.[jax]' or '.[torch]'"
    )


def keras_backend() -> str:
    """The Keras backend in use, or that Keras will use (``KERAS_BACKEND``, else tensorflow)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def versions() -> dict[str, str]:
    """``{"python", "brats_utils", "backend", <installed package>: <version>, ...}``."""
    from brats_utils import __version__

    found = {
        "python": platform.python_version(),
        "brats_utils": __version__,
        "backend": keras_backend(),
    }
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
