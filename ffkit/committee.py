"""Committee artifacts: several models of one system in one file, so an engine can flag extrapolation.

`forward` returns the committee mean in the LAMMPS convention, so a committee runs wherever a single
artifact runs; `forward_committee` adds every member's forces, from which an engine computes the
per-atom force spread after summing ghost contributions (docs/artifact.md, "Committees").
"""

import json
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import __version__
from .artifact import FORMAT_VERSION, UNITS, checkpoint_metrics, compile_model, is_artifact, load_artifact
from .errors import FFKitError
from .model.kernel_export import KERNEL_FILE, convention_kernel_spec, kernel_summary


class CommitteeConvention(nn.Module):
    """M members (each a LAMMPS-convention module) behind one LAMMPS-convention interface."""

    def __init__(self, members: Sequence[nn.Module], cutoff: float, species: List[int], dtype_name: str):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.committee_size: int = len(members)
        self.ffkit_format_version: int = FORMAT_VERSION
        self.cutoff: float = float(cutoff)
        self.species: List[int] = list(species)
        self.dtype_name: str = dtype_name
        self.energy_unit: str = UNITS["energy"]
        self.length_unit: str = UNITS["length"]

    @torch.jit.export
    def forward_committee(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                          n_local: int, compute_virial: bool
                          ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean atom energies, mean forces, mean atom virials, and member forces [M, N, 3]."""
        energies: List[torch.Tensor] = []
        forces: List[torch.Tensor] = []
        virials: List[torch.Tensor] = []
        for member in self.members:
            e, f, v = member(positions, species, edge_index, n_local, compute_virial)
            energies.append(e)
            forces.append(f)
            virials.append(v)
        member_forces = torch.stack(forces)
        return (torch.stack(energies).mean(0), member_forces.mean(0), torch.stack(virials).mean(0),
                member_forces)

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                compute_virial: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        energy, forces, virial, _ = self.forward_committee(positions, species, edge_index, n_local, compute_virial)
        return energy, forces, virial


def load_members(source, dtype: str) -> List[Tuple[nn.Module, Dict[str, Any], str, int]]:
    """The members one source contributes, each a LAMMPS-convention module in `dtype` with its metadata, a name and
    the parameters it adds to the committee (heads share theirs: the first counts the model's, the others none).

    A checkpoint (or a ForceField) is compiled exactly as `ffkit compile` compiles one model (pair terms
    tabulated), then loaded; a multi-head model (`heads` > 1 on its ML terms) gives one member per head,
    members that share every descriptor, which the LAMMPS kernel then computes once for all of them. A
    committee artifact is one member (its mean): a committee of unlike models, one of them an ensemble of its
    own, weighs that ensemble as one model.
    """
    if isinstance(source, nn.Module):
        return _model_members(source, None, "model", dtype)
    path = Path(source)
    if not path.is_file():
        raise FFKitError(f"{path}: committee member not found")
    if not is_artifact(path):
        from .checkpoints import load_checkpoint

        model, ckpt = load_checkpoint(path)
        return _model_members(model, ckpt, path.name, dtype)
    module, meta = load_artifact(path, engine="lammps")
    if meta.get("dtype") != dtype:
        raise FFKitError(f"{path}: artifact dtype is {meta.get('dtype')} (metadata.json 'dtype') but the committee "
                         f"is {dtype}; pass --dtype {meta.get('dtype')}, or the member's checkpoint")
    return [(module, meta, path.name, int(meta.get("n_params") or 0))]


def _model_members(model, ckpt: Optional[Dict[str, Any]], name: str, dtype: str) -> list:
    heads = model.heads()
    members = []
    with tempfile.TemporaryDirectory() as tmp:
        for head in range(heads):
            member = model if heads == 1 else model.head_member(head)
            metrics = checkpoint_metrics(ckpt) if ckpt is not None and heads == 1 else {}
            compile_model(member, Path(tmp) / f"member{head}.pt", dtype=dtype, checkpoint=ckpt, test_metrics=metrics)
            module, meta = load_artifact(Path(tmp) / f"member{head}.pt", engine="lammps")
            members.append((module, meta, name if heads == 1 else f"{name}#head{head}",
                            model.count_parameters() if head == 0 else 0))
    return members


def _common(values: List[Any]) -> Any:
    return values[0] if all(v == values[0] for v in values) else None


def compile_committee(paths: Sequence, out, dtype: str = "float64") -> Dict[str, Any]:
    """Write the committee artifact of the checkpoints/artifacts `paths` (or ForceFields) to `out`; returns its
    metadata."""
    if dtype not in ("float32", "float64"):
        raise FFKitError(f"--dtype must be float32 or float64, not {dtype!r}")
    members = [member for p in paths for member in load_members(p, dtype)]
    if len(members) < 2:
        raise FFKitError("a committee needs at least two members (checkpoints or LAMMPS artifacts, or one checkpoint "
                         "of a model with `heads` >= 2)")
    first_path, first = members[0][2], members[0][1]
    for _, meta, path, _ in members[1:]:
        for field in ("species", "units"):
            if meta.get(field) != first.get(field):
                shown = "species_symbols" if field == "species" else field
                raise FFKitError(f"{path}: committee members must share '{field}': it has {meta.get(shown)} but "
                                 f"{first_path} has {first.get(shown)} (metadata '{shown}', in model order)")
    metas = [meta for _, meta, _, _ in members]
    cutoff = max(float(m["cutoff"]) for m in metas)
    module = CommitteeConvention([m for m, _, _, _ in members], cutoff, first["species"], dtype).eval()
    terms: List[str] = []
    for m in metas:
        terms += [t for t in m.get("terms") or [] if t not in terms]
    meta = {
        **{key: first[key] for key in ("format", "format_version", "engine", "species", "species_symbols", "units")
           if key in first},
        **({"species_masses": first["species_masses"]} if "species_masses" in first else {}),
        "ffkit_version": __version__,
        "cutoff": cutoff,
        "layers": max(int(m.get("layers", 1)) for m in metas),
        "dtype": dtype,
        "tier": _common([m.get("tier") for m in metas]),
        "terms": terms,
        "n_params": sum(added for _, _, _, added in members),
        "training_data_sha256": _common([m.get("training_data_sha256") for m in metas]),
        "test_metrics": {},
        "methods": ["forward", "forward_committee"],
        "paths": {"torchscript": ["forward", "forward_committee"]},
        "committee": {"size": len(members), "members": [
            {"source": name, **{k: m.get(k) for k in ("tier", "cutoff", "n_params", "training_data_sha256",
                                                       "test_metrics", "pair_table")},
             **({"committee_size": m["committee"]["size"]} if "committee" in m else {})}
            for _, m, name, _ in members]},
    }
    files = {}
    spec = convention_kernel_spec(module)  # every member has a kernel: the plugin runs each and averages
    if spec is not None:
        meta["paths"]["kernel"] = kernel_summary(spec)
        files[KERNEL_FILE] = json.dumps(spec)
    scripted = torch.jit.script(module)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(out), _extra_files={**files, "metadata.json": json.dumps(meta, indent=1)})
    return meta
