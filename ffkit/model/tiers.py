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
- `equivariant`: `accurate` plus equivariant tensor messages (ffkit.model.tensor_messages: 3x3
  tensors per channel, one interaction), so directions, not only distances and angles, travel
  between atoms; an atom's energy reaches two cutoffs. On rMD17 ethanol, 115 minutes on one core:
  test F MAE 6.4 meV/Å with 64 channels (48: 7.2, 32: 7.5) against `accurate`'s 10.1 for as long;
  in LAMMPS it runs on the plugin's hand-written kernel with ghosts two cutoffs deep.

A config may name a tier and override any field, or list its own `terms` of any registered type
(`ffkit.model.term.TERM_TYPES`). The 3-body and many-body terms take `heads: N`: N atomic networks
on one descriptor, a committee that LAMMPS runs at about one model's cost (ffkit.model.readout).
How each tier trains is in `ffkit.recipes`.
"""

import copy
from typing import Any, Dict, List, Optional

from ..errors import FFKitError
from . import physics, pair, descriptor_terms, message_passing, tensor_messages  # noqa: F401 (importing registers their term types)
from .forcefield import ForceField
from .term import TERM_TYPES, make_term

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
TIERS["equivariant"] = {
    **TIERS["accurate"],
    "tensors": {"type": "tensor_messages", "cutoff": 5.0, "n_basis": 8, "channels": 64, "interactions": 1,
                "hidden": [64, 64]},
}


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
    modules = {name: make_term(spec["type"], spec, species, avg_neighbors) for name, spec in specs.items()}
    refs = reference_energies if reference_energies is not None else [0.0] * len(species)
    return ForceField(species, modules, refs)
