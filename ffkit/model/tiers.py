"""Named tiers: presets of terms and sizes from the MM end to the MLFF end of the design space.

- `mm`: physics (ZBL repulsion, damped C6 dispersion, DSF Coulomb with learned per-element
  charges) + a learned pair potential. Pairwise only: the cost of a classical pair style.
- `fast`: repulsion + pair potential + a small 3-body network at 4 Å (angles up to cos^3).
- `balanced`: the same families, wider, angles up to cos^4, at 5 Å.
- `accurate`: repulsion + pair potential + many-body descriptors (3-body up to cos^4 plus
  4-body invariants of rank <= 2 moments) at 5 Å, read by one wider network shared by all
  elements (per-element networks overfitted: at 10 minutes on rMD17 ethanol, test F MAE
  14.4 meV/Å with three [96, 96] networks, 13.7 with one, 13.5 with one [128, 128]; 28 minutes:
  12.6 -> 11.7). Each moment rank has its own radial functions (`radial_per_rank`): at 28
  minutes 10.4 -> 9.8 (seed 1: 10.8 -> 9.4) with 22% fewer epochs (779 vs 1003).

A config may name a tier and override any field, or list its own `terms` (see `TERM_TYPES`).
"""

import copy
from typing import Any, Dict, List, Optional

from torch import nn

from ..errors import FFKitError
from .descriptor_terms import ManyBodyML, ThreeBodyML
from .forcefield import ForceField
from .message_passing import MessagePassingML
from .pair import PairML
from .physics import DampedShiftedCoulomb, Dispersion, ZBLRepulsion

TIERS: Dict[str, Dict[str, Dict[str, Any]]] = {
    "mm": {
        "repulsion": {"type": "zbl"},
        "dispersion": {"type": "dispersion", "cutoff": 6.0},
        "coulomb": {"type": "coulomb", "cutoff": 6.0},
        "pair": {"type": "pair", "cutoff": 6.0, "n_basis": 16},
    },
    "fast": {
        "repulsion": {"type": "zbl"},
        "pair": {"type": "pair", "cutoff": 4.0, "n_basis": 12},
        "three_body": {"type": "three_body", "cutoff": 4.0, "n_basis": 8, "n_channels": 8, "l_max": 3,
                       "hidden": [32]},
    },
    "balanced": {
        "repulsion": {"type": "zbl"},
        "pair": {"type": "pair", "cutoff": 5.0, "n_basis": 12},
        "three_body": {"type": "three_body", "cutoff": 5.0, "n_basis": 8, "n_channels": 16, "l_max": 4,
                       "hidden": [64, 64]},
    },
    "accurate": {
        "repulsion": {"type": "zbl"},
        "pair": {"type": "pair", "cutoff": 5.0, "n_basis": 12},
        "many_body": {"type": "many_body", "cutoff": 5.0, "n_basis": 10, "n_channels": 16, "l_max": 4,
                      "n_coupled": 6, "hidden": [128, 128], "shared_readout": True, "radial_per_rank": True},
    },
}


# Adam learning rate each tier trains best with (batch 8, rMD17 ethanol, equal wall time): larger
# models want smaller steps. Custom term mixes default to DEFAULT_LEARNING_RATE.
LEARNING_RATES = {"mm": 2e-2, "fast": 5e-3, "balanced": 2.5e-3, "accurate": 1.25e-3}
DEFAULT_LEARNING_RATE = 5e-3


def learning_rate(tier: Optional[str]) -> float:
    return LEARNING_RATES.get(tier or "", DEFAULT_LEARNING_RATE)


# Force penalty each tier trains with. Huber (quadratic below `huber_delta`, linear above) keeps
# pulling on the many small force errors the MAE counts once the large ones are gone: on rMD17
# ethanol, at equal 10-minute budgets, test F MAE went 18.6 -> 13.9 meV/Å (accurate) and
# 15.1 -> 13.0 (balanced); delta 0.005 gave 14.0; fast at its 8-minute budget 24.6 -> 17.4.
# Not measured on mm (errors of hundreds of meV/Å, set by its physics), which keeps (dF)^2.
FORCE_LOSSES = {"fast": "huber", "balanced": "huber", "accurate": "huber"}
DEFAULT_FORCE_LOSS = "mse"


def force_loss(tier: Optional[str]) -> str:
    return FORCE_LOSSES.get(tier or "", DEFAULT_FORCE_LOSS)


# Decoupled (AdamW) weight decay on the atomic networks' weight matrices. Without it `accurate`
# fits rMD17 ethanol's 950 training frames to 3.2 meV/Å but tests at 11.6; at its 28-minute
# budget (seed 0) decay 0.01 gave test F MAE 10.7, 0.05 gave 10.2 and 0.1 gave 10.4 (seed 1:
# 10.8), differences within the seed-to-seed spread. `balanced` at its 10 minutes with 0.1:
# 12.7 -> 11.4 (water 23.9 -> 22.5). `fast` (15 k parameters, less overfitted) at its 8 minutes
# with 0.1: 17.4 -> 18.2 (water 32.7 -> 32.6), so it trains without.
WEIGHT_DECAYS = {"balanced": 0.1, "accurate": 0.1}
DEFAULT_WEIGHT_DECAY = 0.0


def weight_decay(tier: Optional[str]) -> float:
    return WEIGHT_DECAYS.get(tier or "", DEFAULT_WEIGHT_DECAY)


# Optimiser steps each tier trains for when no --epochs is given: what it reached in its wall-time
# budget on rMD17 ethanol (epochs x 119 batches of 8; mm 124 x 60 of 16). A budget in steps, not
# minutes, gives a larger molecule or data set as many updates as ethanol got, where a fixed time
# gave a 21-atom molecule a fifth of the epochs and a schedule that ended on a plateau.
TRAINING_STEPS = {"mm": 7_500, "fast": 54_000, "balanced": 61_000, "accurate": 93_000}
DEFAULT_TRAINING_STEPS = 50_000


def training_steps(tier: Optional[str]) -> int:
    return TRAINING_STEPS.get(tier or "", DEFAULT_TRAINING_STEPS)


def _make_term(kind: str, spec: Dict[str, Any], species: List[int], avg_neighbors: float) -> nn.Module:
    n = len(species)
    args = {k: v for k, v in spec.items() if k != "type"}
    if kind == "zbl":
        return ZBLRepulsion(species)
    if kind == "dispersion":
        return Dispersion(species, **args)
    if kind == "coulomb":
        return DampedShiftedCoulomb(species, **args)
    if kind == "pair":
        return PairML(n, **args)
    if kind == "three_body":
        return ThreeBodyML(n, avg_neighbors=avg_neighbors, **args)
    if kind == "many_body":
        return ManyBodyML(n, avg_neighbors=avg_neighbors, **args)
    if kind == "message_passing":
        return MessagePassingML(n, avg_neighbors=avg_neighbors, **args)
    raise FFKitError(f"unknown term type {kind!r}; known: {', '.join(TERM_TYPES)}")


TERM_TYPES = ("zbl", "dispersion", "coulomb", "pair", "three_body", "many_body", "message_passing")


def resolve_terms(tier: Optional[str], terms: Optional[Dict[str, Dict[str, Any]]] = None) -> Dict[str, Dict[str, Any]]:
    """The term specs of a tier, with per-term overrides from a config merged in."""
    if tier is None and not terms:
        raise FFKitError("no model given: pass --tier (one of " + ", ".join(TIERS) + ") or `terms:` in the config")
    if tier is not None and tier not in TIERS:
        raise FFKitError(f"unknown tier {tier!r}; known tiers: {', '.join(TIERS)}")
    specs = copy.deepcopy(TIERS[tier]) if tier else {}
    for name, override in (terms or {}).items():
        if override is None:
            specs.pop(name, None)
            continue
        merged = {**specs.get(name, {}), **override}
        if "type" not in merged:
            raise FFKitError(f"term {name!r} in the config needs a `type` (one of {', '.join(TERM_TYPES)})")
        specs[name] = merged
    return specs


def build_model(tier: Optional[str], species: List[int], reference_energies: Optional[List[float]] = None,
                terms: Optional[Dict[str, Dict[str, Any]]] = None, avg_neighbors: float = 10.0) -> ForceField:
    specs = resolve_terms(tier, terms)
    modules = {name: _make_term(spec["type"], spec, species, avg_neighbors) for name, spec in specs.items()}
    refs = reference_energies if reference_energies is not None else [0.0] * len(species)
    return ForceField(species, modules, refs)
