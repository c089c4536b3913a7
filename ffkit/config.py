"""Training configuration: one dataclass, filled from defaults, then a YAML file, then CLI flags."""

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional, Union, get_args

import yaml

from .errors import FFKitError


@dataclass
class TrainConfig:
    data: str = ""
    out: str = ""
    valid: Optional[str] = None           # separate validation file; else `n_valid` held out of `data`
    n_valid: Union[int, float] = 0.1      # int = frames, float = fraction held out (seeded)
    tier: Optional[str] = "balanced"
    terms: Optional[Dict[str, Any]] = None  # per-term overrides or a custom mix (see ffkit.model.tiers)
    epochs: Optional[int] = None          # None = the tier's optimiser steps (ffkit.recipes.TRAINING_STEPS)
    batch_size: Optional[int] = None      # frames per optimiser step; None = the tier's (ffkit.recipes.BATCH_SIZES)
    lr: Optional[float] = None            # Adam learning rate; None = the tier's (ffkit.recipes.LEARNING_RATES)
    lr_min_factor: float = 0.01           # cosine decay to lr * lr_min_factor
    energy_weight: float = 1.0            # on (per-atom energy error)^2, eV^2
    force_weight: float = 10.0            # on the force component penalty (see force_loss)
    force_loss: Optional[str] = None      # "mse" or "huber"; None = the tier's (ffkit.recipes.FORCE_LOSSES)
    huber_delta: float = 0.01             # eV/Å: the Huber penalty is quadratic below, linear above
    ema_decay: float = 0.99               # exponential moving average of weights; 0 = off
    weight_decay: Optional[float] = None  # AdamW decay of the atomic networks' weights; None = the tier's
    seed: int = 0
    dtype: str = "float32"
    reference: str = "fit"                # "fit" (least squares) or an isolated-atoms extxyz path
    energy_key: str = "energy"
    forces_key: str = "forces"
    energy_unit: str = "eV"
    length_unit: str = "angstrom"
    threads: Optional[int] = 1            # torch threads; 1 is fastest for small frames
    max_minutes: Optional[float] = None   # stop (and save) after the epoch that crosses this
    max_frames: Optional[int] = None      # use only the first N frames of `data` (quick runs)
    progress: bool = True
    provenance: Optional[Dict[str, Any]] = None  # where generated training data came from (ffkit distill)

    def __post_init__(self) -> None:
        # absolute data paths: a run is resumed, and `ffkit compile` proves its artifact on the
        # training data, from wherever those commands run
        self.data, self.valid = absolute_path(self.data), absolute_path(self.valid)
        # here, not in load_config, so a config built in Python cannot silently train on MSE
        if self.dtype not in ("float32", "float64"):
            raise FFKitError(f"dtype must be float32 or float64, not {self.dtype!r}")
        if self.force_loss not in (None, "mse", "huber"):
            raise FFKitError(f"force_loss must be mse or huber, not {self.force_loss!r}")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise FFKitError(f"weight_decay must be >= 0, not {self.weight_decay!r}")
        if not self.huber_delta > 0:
            raise FFKitError(f"huber_delta must be a positive force in eV/Å, not {self.huber_delta!r}")
        from .model.tiers import TIERS

        if self.tier is not None and self.tier not in TIERS:
            raise FFKitError(f"unknown tier {self.tier!r}; known tiers: {', '.join(TIERS)}")
        if self.epochs is not None and not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise FFKitError(f"epochs must be a whole number >= 1, not {self.epochs!r}; leave it out for the "
                             "tier's default number of optimiser steps")
        if self.batch_size is not None and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise FFKitError(f"batch_size must be a whole number of frames >= 1, not {self.batch_size!r}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise FFKitError(f"lr must be a finite learning rate > 0, not {self.lr!r} (e.g. 1e-3), or left out "
                             "for the tier's")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise FFKitError(f"max_minutes must be > 0, not {self.max_minutes!r}")
        if self.out and Path(self.out).exists() and not Path(self.out).is_dir():
            raise FFKitError(f"out {self.out}: an existing file, not a run folder; choose a new --out")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def absolute_path(path: Optional[str]) -> Optional[str]:
    """`path` made absolute (from the working directory); empty and None stay as they are."""
    return os.path.abspath(path) if path else path


def load_config(path: Optional[str], overrides: Dict[str, Any]) -> TrainConfig:
    values: Dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FFKitError(f"{p}: config file not found")
        try:
            values = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise FFKitError(f"{p}: not valid YAML ({exc})") from None
        if not isinstance(values, dict):
            raise FFKitError(f"{p}: the config must be a mapping of option: value")
    known = {f.name: f.type for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise FFKitError(f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {k: _number(v, known[k], k, path) for k, v in values.items()}
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig(**values)
    if not cfg.data or not cfg.out:
        raise FFKitError("training needs `data` (--data) and `out` (--out)")
    return cfg


def _number(value: Any, annotation: Any, name: str, path: Optional[str]) -> Any:
    """A numeric option written as text, as YAML reads `1e-3` (no dot), made a number; else a clear error."""
    kinds = [t for t in (get_args(annotation) or (annotation,)) if t is not type(None)]
    if not isinstance(value, str) or str in kinds or not {int, float} & set(kinds):
        return value
    try:
        number = float(value)
    except ValueError:
        raise FFKitError(f"{path}: `{name}: {value}` is not a number; write e.g. `{name}: 1.0e-3`") from None
    if int in kinds and number.is_integer():
        return int(number)
    if float not in kinds:
        raise FFKitError(f"{path}: `{name}: {value}` must be a whole number")
    return number
