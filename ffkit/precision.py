"""Floating-point precisions by name: the one place "float32"/"float64" become torch dtypes."""

import torch

from .errors import FFKitError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_dtype(name: str, what: str = "--dtype") -> torch.dtype:
    """The torch dtype called `name`, or a clear error naming the option (`what`) that gave it."""
    if name not in DTYPES:
        raise FFKitError(f"{what} must be float32 or float64, not {name!r}")
    return DTYPES[name]
