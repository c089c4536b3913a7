"""Checkpoints: everything needed to rebuild a model or resume training, written atomically.

A checkpoint is written to a temporary file in the same directory and renamed over the old one,
so a kill (even SIGKILL) at any moment leaves either the previous or the new checkpoint whole.
"""

import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Tuple

import torch

from .errors import FFKitError
from .model.forcefield import ForceField
from .model.tiers import build_model

CHECKPOINT_FORMAT = "ffkit-checkpoint"


def save_atomic(obj: Dict[str, Any], path: Path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path) -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FFKitError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged zip/pickle
        raise FFKitError(f"{path}: not a readable ffkit checkpoint ({type(exc).__name__}: {exc}); "
                         "it may be truncated — use last.pt or best.pt from the run directory") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise FFKitError(f"{path}: not an ffkit checkpoint (no 'format: {CHECKPOINT_FORMAT}' entry); "
                         "pass a file written by `ffkit train` (RUN_DIR/best.pt or last.pt)")
    return ckpt


def model_from_spec(spec: Dict[str, Any]) -> ForceField:
    return build_model(None, spec["species"], spec["reference_energies"], terms=spec["terms"],
                       avg_neighbors=spec["avg_neighbors"])


def load_state(model: ForceField, state: Dict[str, Any], path) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise FFKitError(f"{path}: the checkpoint does not fit the model its own spec builds with this ffkit "
                         f"({first}); it was written by an incompatible ffkit version: retrain, or use that "
                         "version") from None


def load_checkpoint(path, use_ema: bool = True) -> Tuple[ForceField, Dict[str, Any]]:
    """The model of a checkpoint (float64, eval mode; averaged weights when the run kept them)."""
    ckpt = read_checkpoint(path)
    model = model_from_spec(ckpt["model_spec"])
    state = ckpt.get("ema_state") if use_ema and ckpt.get("ema_state") is not None else ckpt["model_state"]
    load_state(model, state, path)
    return model.double().eval(), ckpt
