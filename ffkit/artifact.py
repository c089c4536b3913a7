"""`ffkit compile`: a trained model as a self-describing TorchScript artifact (docs/artifact.md).

The artifact carries its metadata (species, cutoff, units, dtype, format version) both as
`metadata.json` in `_extra_files` and as TorchScript attributes, so an engine can run it, or
refuse it with a clear message, with nothing else at hand.
"""

import copy
import json
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from ase.data import atomic_masses, chemical_symbols
from torch import nn

from . import __version__, precision
from .errors import FFKitError
from .model.forcefield import ForceField
from .model.kernel_export import KERNEL_FILE, convention_kernel_spec, kernel_summary
from .model.tabulated import tabulate_pair_terms

FORMAT = "ffkit-artifact"
FORMAT_VERSION = 1
UNITS = {"energy": "eV", "length": "angstrom", "force": "eV/angstrom"}


def forces_from_pair_gradients(grad: torch.Tensor, edge_index: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """-dE/dx from dE/dr_ij, r_ij = x_j - x_i: each pair's gradient pulls on i and pushes on j."""
    return torch.zeros_like(positions).index_add(0, edge_index[0], grad).index_add(0, edge_index[1], -grad)


class LammpsConvention(nn.Module):
    """The LAMMPS calling convention: ghosts as explicit atoms, forces and per-atom virial out.

    Gradients are taken with respect to the pair vectors r_ij (not positions), which gives both
    forces and the per-pair virial from one backward pass. `forward_pairs` takes the pair vectors
    themselves (what `pair_style ffkit` calls); `forward` forms them from positions (ASE, tests).
    """

    def __init__(self, model: ForceField):
        super().__init__()
        self.model = model
        self.ffkit_format_version: int = FORMAT_VERSION
        self.cutoff: float = float(model.cutoff)
        self.species: List[int] = list(model.species)
        self.dtype_name: str = str(model.reference_energies.dtype).replace("torch.", "")
        self.energy_unit: str = UNITS["energy"]
        self.length_unit: str = UNITS["length"]

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                compute_virial: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vectors = positions.index_select(0, edge_index[1]) - positions.index_select(0, edge_index[0])
        atom_energy, grad = self.forward_pairs(vectors, species, edge_index, n_local)
        forces = forces_from_pair_gradients(grad, edge_index, positions)
        if not compute_virial:
            return atom_energy, forces, torch.zeros(0, 6, dtype=positions.dtype)
        w = -vectors.detach().unsqueeze(-1) * grad.unsqueeze(-2)
        voigt = 0.5 * torch.stack([w[:, 0, 0], w[:, 1, 1], w[:, 2, 2], w[:, 0, 1], w[:, 0, 2], w[:, 1, 2]], dim=1)
        virial = torch.zeros(positions.shape[0], 6, dtype=positions.dtype)
        virial = virial.index_add(0, edge_index[0], voigt).index_add(0, edge_index[1], voigt)
        return atom_energy, forces, virial

    @torch.jit.export
    def forward_pairs(self, vectors: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                      n_local: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies and dE/dr_ij from pair vectors r_ij = x_j - x_i that the engine formed in
        double precision: no absolute coordinate is ever rounded to the model's dtype, so a float32
        model gives the same answer wherever the system sits (docs/artifact.md)."""
        vectors = vectors.detach()
        vectors.requires_grad_(True)
        atom_energy = self.model(species, edge_index, vectors, n_local)
        grads = torch.autograd.grad([atom_energy.sum()], [vectors], allow_unused=True)
        grad = grads[0]
        if grad is None:
            grad = torch.zeros_like(vectors)
        return atom_energy.detach(), grad


def metadata(model: ForceField, engine: str, dtype: torch.dtype, checkpoint: Optional[Dict[str, Any]] = None,
             test_metrics: Optional[Dict[str, float]] = None, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    spec = (checkpoint or {}).get("model_spec", {})
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ffkit_version": __version__,
        "engine": engine,
        "species": list(model.species),
        "species_symbols": [chemical_symbols[z] for z in model.species],
        "species_masses": [float(atomic_masses[z]) for z in model.species],  # engines check types against them
        "cutoff": float(model.cutoff),
        "layers": int(getattr(model, "layers", 1)),
        "units": dict(UNITS),
        "dtype": str(dtype).replace("torch.", ""),
        "tier": spec.get("tier"),
        "terms": list(model.term_names),
        "n_params": model.count_parameters(),
        "training_data_sha256": (checkpoint or {}).get("data_hash"),
        # closest approach per element pair in the training data (Å): below it the model extrapolates
        "min_distances": (checkpoint or {}).get("min_distances"),
        "test_metrics": test_metrics or {},
    }
    provenance = ((checkpoint or {}).get("config") or {}).get("provenance")
    if provenance:  # e.g. the teacher, sampling and frame counts of a distilled model
        meta["provenance"] = provenance
    meta.update(extra or {})
    return meta


def checkpoint_metrics(checkpoint: Dict[str, Any]) -> Dict[str, float]:
    """The validation metrics of a checkpoint's last epoch, recorded as the artifact's test_metrics."""
    history = checkpoint.get("history") or [{}]
    return {k: v for k, v in history[-1].items() if k.startswith("valid_")}


def compile_model(model: ForceField, path, dtype: str = "float64", checkpoint: Optional[Dict[str, Any]] = None,
                  test_metrics: Optional[Dict[str, float]] = None, tabulate: bool = True) -> Dict[str, Any]:
    """Write the LAMMPS-convention artifact of `model` in `dtype`; returns its metadata.

    With `tabulate`, the pairwise terms run as one spline table (ffkit.model.tabulated); the
    table's measured interpolation error goes into the metadata. A model whose terms all have a
    hand-written kernel also carries their parameters for it (`kernel.json`; metadata 'paths').
    """
    torch_dtype = precision.torch_dtype(dtype)
    tabulated = tabulate_pair_terms(model) if tabulate else {"model": model, "tabulated": None}
    module = LammpsConvention(copy.deepcopy(tabulated["model"]).to(torch_dtype).eval())
    spec = convention_kernel_spec(module)
    paths = {"torchscript": ["forward", "forward_pairs"]}
    if spec is not None:
        paths["kernel"] = kernel_summary(spec)
    meta = metadata(model, "lammps", torch_dtype, checkpoint, test_metrics,
                    extra={"pair_table": tabulated["tabulated"], "methods": ["forward", "forward_pairs"],
                           "paths": paths})
    scripted = torch.jit.script(module)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {"metadata.json": json.dumps(meta, indent=1)}
    if spec is not None:
        files[KERNEL_FILE] = json.dumps(spec)
    scripted.save(str(path), _extra_files=files)
    return meta


def recast_artifact(source, path, dtype: str) -> Dict[str, Any]:
    """Copy a LAMMPS-convention artifact in another precision (no checkpoint needed).

    Weights trained in float32 survive float64 -> float32 exactly, so this equals compiling the
    checkpoint in `dtype` (spline tables are computed in float64 either way, then rounded). The copy
    carries a kernel whenever its terms have one, also if the source was written before kernels.
    """
    torch_dtype = precision.torch_dtype(dtype)
    meta = read_metadata(source)
    module, _ = load_artifact(source, engine="lammps")
    module = module.to(torch_dtype)
    module.dtype_name = dtype
    meta["dtype"] = dtype
    files = extra_files(source)
    spec = convention_kernel_spec(module)
    meta["paths"] = {"torchscript": [m for m in ("forward", "forward_pairs", "forward_committee")
                                     if hasattr(module, m)]}
    files.pop(KERNEL_FILE, None)
    if spec is not None:
        meta["paths"]["kernel"] = kernel_summary(spec)
        files[KERNEL_FILE] = json.dumps(spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path), _extra_files={**files, "metadata.json": json.dumps(meta, indent=1)})
    return meta


def extra_files(path) -> Dict[str, str]:
    """The artifact's extra files other than metadata.json (a kernel's parameters), by name."""
    with zipfile.ZipFile(path) as zf:
        return {name.split("extra/", 1)[1]: zf.read(name).decode() for name in zf.namelist()
                if "extra/" in name and not name.endswith("extra/metadata.json")}


def write_metadata(path, meta: Dict[str, Any]) -> None:
    """Replace the metadata of the artifact at `path` (e.g. with `engine_parity` once it is proven)."""
    files = {**extra_files(path), "metadata.json": json.dumps(meta, indent=1)}
    module = torch.jit.load(str(path), map_location="cpu")
    module.save(str(path), _extra_files=files)


def is_artifact(path) -> bool:
    """True for a compiled ffkit artifact (a zip holding extra/metadata.json), False for a checkpoint."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(name.endswith("extra/metadata.json") for name in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_metadata(path) -> Dict[str, Any]:
    """The metadata of an artifact, read from the zip without loading TorchScript."""
    path = Path(path)
    if not path.is_file():
        raise FFKitError(f"{path}: model file not found")
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith("extra/metadata.json")]
            if not names:
                raise FFKitError(f"{path}: not an ffkit artifact (a TorchScript file without extra/metadata.json); "
                                 "compile a checkpoint with `ffkit compile CHECKPOINT --out model.pt`")
            meta = json.loads(zf.read(names[0]))
    except zipfile.BadZipFile:
        raise FFKitError(f"{path}: not a TorchScript artifact (not a zip archive; truncated or corrupted?)") from None
    except json.JSONDecodeError as exc:
        raise FFKitError(f"{path}: metadata.json is corrupted ({exc})") from None
    if meta.get("format") != FORMAT:
        raise FFKitError(f"{path}: metadata.json has format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise FFKitError(f"{path}: artifact format version {meta.get('format_version')} but this ffkit reads "
                         f"version {FORMAT_VERSION}; recompile the checkpoint with this ffkit")
    return meta


def load_artifact(path, engine: str = "lammps") -> Tuple[torch.jit.ScriptModule, Dict[str, Any]]:
    meta = read_metadata(path)
    if meta.get("engine") != engine:
        raise FFKitError(f"{path}: compiled for engine {meta.get('engine')!r}, but {engine!r} is needed here; "
                         f"compile with `ffkit compile CHECKPOINT --engine {engine}`")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise FFKitError(f"{path}: TorchScript could not load it ({type(exc).__name__}: {str(exc)[:300]})") from None
    return module, meta
