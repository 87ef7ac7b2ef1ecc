"""Optional dependencies, checked before work starts (MONAI's :func:`~monai.utils.optional_import` style).

A command that needs a package from an extra calls :func:`require` first, so a base install fails at once
with the install hint instead of after an hour of training or benchmarking.

Example:
    >>> from monai_imc.optional import require
    >>> require("json", extra="bench", purpose="the benchmark's plots")
"""

from __future__ import annotations

from monai.utils import OptionalImportError, optional_import

__all__ = ["PIP_NAMES", "OptionalImportError", "pip_name", "require"]

#: The distribution that installs a module, where its name differs from the module's.
PIP_NAMES = {"skimage": "scikit-image", "pywt": "PyWavelets", "yaml": "pyyaml"}


def pip_name(module: str) -> str:
    """The name ``pip install`` takes for ``module`` (``skimage`` -> ``scikit-image``)."""
    return PIP_NAMES.get(module, module)


def require(module: str, extra: str, purpose: str) -> None:
    """Raise unless ``module`` imports.

    Args:
        module: the module to import, e.g. ``"matplotlib"``.
        extra: the monai-imc extra that installs it, e.g. ``"bench"``.
        purpose: what needs it, for the message.

    Raises:
        OptionalImportError: the module is missing; the message gives the ``pip install`` that fixes it.
    """
    _, found = optional_import(module)
    if not found:
        raise OptionalImportError(
            f"{purpose} needs {module}, which is not installed: pip install 'monai-imc[{extra}]' "
            f"(or pip install {pip_name(module)})"
        )
