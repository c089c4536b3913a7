"""An ffkit model in GROMACS's NNPot calling convention (TorchScript, pure: no custom ops).

GROMACS (2025+) calls the module with the tensors named by `nnpot-model-input1..N`, in mdp order,
and takes back `(energy kJ/mol, forces kJ/mol/nm)` or the energy alone (it then backpropagates
to input 1). Two input layouts are offered:

- "positions": atom-positions (N,3) float32 nm, atom-numbers (N,) int32, box (3,3) float32 nm
  (rows are box vectors), pbc (3,) bool. GROMACS wraps NN atoms into the box one by one, so a
  molecule can arrive split across the box: the module finds its own neighbour pairs with
  periodic images (minimum image and beyond), in pure TorchScript.
- "pairs" (GROMACS 2026): atom-positions, atom-numbers, atom-pairs (P,2) int32 and pair-shifts
  (P,3) float32 nm from GROMACS's pair list: each pair once, distance x[a] - x[b] + shift.

Units are converted at the boundary (nm -> Å, eV -> kJ/mol); the wrapped model is the same
`ForceField` that LAMMPS and ASE run. grompp checks a model by calling it on one or two dummy
atoms sitting at the origin with atomic number 1 (the link-atom element in 2026); such an input
(<= 2 atoms, all exactly at the origin, which no physical NN group has) returns zero energy and
forces without looking up elements, so grompp passes cleanly even for a model without hydrogen.
An element the model does not know is reported at mdrun's first step, naming the element.
"""

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from ase.data import chemical_symbols
from torch import nn

from ffkit.artifact import FORMAT_VERSION, UNITS, forces_from_pair_gradients, load_artifact
from ffkit.artifact import metadata as artifact_metadata
from ffkit.errors import FFKitError
from ffkit.precision import torch_dtype
from ffkit.units import KJ_PER_MOL_PER_EV

NM_TO_ANGSTROM = 10.0
LAYOUTS: Dict[str, List[str]] = {
    "positions": ["atom-positions", "atom-numbers", "box", "pbc"],
    "pairs": ["atom-positions", "atom-numbers", "atom-pairs", "pair-shifts"],
}
INTERFACE_UNITS = {"energy": "kJ/mol", "length": "nm", "force": "kJ/mol/nm"}
PAIR_BLOCK = 1 << 21  # candidate pairs per block in the pair search (memory ~ 100 bytes each)
# Up to this many atoms checking all pairs beats building a cell list (measured on 1 core: 9 atoms
# in a 2.5 nm box 0.2 vs 3.0 ms, 60 atoms 0.2 vs 1.5 ms, 192 atoms 2.9 vs 3.7 ms, 384 atoms 7.0 vs 3.5 ms)
ALL_PAIRS_ATOMS = 128


class NNPotModule(nn.Module):
    """What both layouts share: input checks, element lookup, pair search, energy and forces."""

    def __init__(self, model: nn.Module, layout: str, compute_dtype: torch.dtype):
        super().__init__()
        self.model = model
        self.ffkit_format_version: int = FORMAT_VERSION
        # the interface is GROMACS's (nm, kJ/mol); the wrapped model works in Å and eV inside
        self.cutoff_A: float = float(model.cutoff)
        self.cutoff: float = float(model.cutoff) / NM_TO_ANGSTROM
        self.species: List[int] = list(model.species)
        self.dtype_name: str = "float32"
        self.energy_unit: str = INTERFACE_UNITS["energy"]
        self.length_unit: str = INTERFACE_UNITS["length"]
        self.layout: str = layout
        self.mdp_inputs: List[str] = list(LAYOUTS[layout])
        self.species_names: str = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in model.species)
        self.symbols: List[str] = list(chemical_symbols)
        self.compute_dtype: torch.dtype = compute_dtype
        self.nm: float = NM_TO_ANGSTROM
        self.kj_per_mol_per_ev: float = KJ_PER_MOL_PER_EV
        self.pair_block: int = PAIR_BLOCK
        self.all_pairs_atoms: int = ALL_PAIRS_ATOMS
        lookup = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
        lookup[torch.tensor(model.species, dtype=torch.long)] = torch.arange(len(model.species))
        self.register_buffer("lookup", lookup)

    def _input_error(self, index: int, expected: str, got: torch.Tensor) -> str:
        return ("ffkit NNPot model: nnpot-model-input{} must be {} {}, but got a {} tensor of shape {}; "
                "this artifact expects nnpot-model-input1..{} = {} (rewrite the mdp block with ffkit)").format(
            index, self.mdp_inputs[index - 1], expected, str(got.dtype).replace("torch.", ""), got.shape,
            len(self.mdp_inputs), " ".join(self.mdp_inputs))

    def _check_atoms(self, positions: torch.Tensor, numbers: torch.Tensor) -> None:
        if positions.dtype != torch.float32 or positions.dim() != 2 or positions.size(1) != 3:
            raise ValueError(self._input_error(1, "(float32, shape [N, 3], nm)", positions))
        if numbers.dtype != torch.int32 or numbers.dim() != 1 or numbers.size(0) != positions.size(0):
            raise ValueError(self._input_error(2, "(int32, shape [N])", numbers))

    def _check_box(self, box: torch.Tensor, pbc: torch.Tensor) -> None:
        if not box.is_floating_point() or box.shape != (3, 3):
            raise ValueError(self._input_error(3, "(float32, shape [3, 3], nm, rows are box vectors)", box))
        if pbc.dtype != torch.bool or pbc.shape != (3,):
            raise ValueError(self._input_error(4, "(bool, shape [3])", pbc))


    def _check_pairs(self, pairs: torch.Tensor, pair_shifts: torch.Tensor) -> None:
        if pairs.dtype != torch.int32 or pairs.dim() != 2 or pairs.size(1) != 2:
            raise ValueError(self._input_error(3, "(int32, shape [P, 2])", pairs))
        if not pair_shifts.is_floating_point() or pair_shifts.dim() != 2 or pair_shifts.size(1) != 3 \
                or pair_shifts.size(0) != pairs.size(0):
            raise ValueError(self._input_error(4, "(float32, shape [P, 3], nm)", pair_shifts))

    def _is_grompp_check(self, positions: torch.Tensor) -> bool:
        return positions.size(0) <= 2 and bool((positions == 0).all())

    def _species_index(self, numbers: torch.Tensor) -> torch.Tensor:
        z = numbers.long()
        in_table = (z >= 0) & (z < self.lookup.size(0))
        index = torch.where(in_table, self.lookup[z.clamp(0, self.lookup.size(0) - 1)], torch.full_like(z, -1))
        if bool((index < 0).any()):
            unknown: List[str] = []
            values: List[int] = torch.unique(z[index < 0]).tolist()
            for value in values:
                if value > 0 and value < len(self.symbols):
                    unknown.append(self.symbols[value] + " (Z={})".format(value))
                else:
                    unknown.append("Z={}".format(value))
            raise ValueError(("ffkit NNPot model: element(s) {} in the NN input group are not in this model, "
                              "which knows {}; take those atoms out of nnpot-input-group or train a model "
                              "that includes them").format(", ".join(unknown), self.species_names))
        return index

    def _energy_forces(self, positions: torch.Tensor, numbers: torch.Tensor, edge_index: torch.Tensor,
                       shifts: torch.Tensor, need_forces: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Energy (kJ/mol, float64) and forces (kJ/mol/nm) from nm positions and Å edge shifts.

        With need_forces the gradient is taken by the module (w.r.t. the pair vectors); otherwise
        the energy stays differentiable w.r.t. `positions` for GROMACS to backpropagate.
        """
        species = self._species_index(numbers)
        x = positions.to(self.compute_dtype) * self.nm
        if need_forces:
            x = x.detach()
        vectors = x.index_select(0, edge_index[1]) - x.index_select(0, edge_index[0]) + shifts
        if need_forces:
            vectors.requires_grad_(True)
        atom_energy = self.model(species, edge_index, vectors, positions.size(0))
        energy = atom_energy.to(torch.float64).sum() * self.kj_per_mol_per_ev
        if not need_forces:
            return energy, torch.zeros(0, 3)
        grad = torch.autograd.grad([atom_energy.sum()], [vectors], allow_unused=True)[0]
        if grad is None:
            grad = torch.zeros_like(vectors)
        forces = forces_from_pair_gradients(grad, edge_index, x)
        return energy.detach(), (forces * (self.kj_per_mol_per_ev * self.nm)).to(torch.float32)

    def _periodic_cell(self, box: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
        """The box in Å with a non-periodic z (GROMACS pbc = xy) replaced by the unit normal."""
        cell = box.to(torch.float64) * self.nm
        periodic: List[bool] = pbc.tolist()
        if periodic == [True, True, False]:
            normal = torch.linalg.cross(cell[0], cell[1])
            cell = torch.stack([cell[0], cell[1], normal / torch.linalg.vector_norm(normal)])
        elif periodic != [True, True, True]:
            raise ValueError("ffkit NNPot model: periodicity {} is not supported; use pbc = xyz or xy in "
                             "the mdp file".format(periodic))
        if abs(float(torch.linalg.det(cell))) < 1e-6:
            rows: List[List[float]] = box.tolist()
            raise ValueError("ffkit NNPot model: the box {} nm is degenerate (zero volume)".format(rows))
        return cell

    def _pairs_in_box(self, positions: torch.Tensor, box: torch.Tensor,
                      pbc: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """All directed pairs (i, j) within the cutoff and their shifts s (Å): r_ij = x_j - x_i + s.

        A cell list (cells at least one cutoff wide, in fractional coordinates, so triclinic boxes
        work too) when every periodic box width is at least the cutoff and there are more than
        ALL_PAIRS_ATOMS atoms; otherwise a search over all pairs and every periodic image that can
        be within reach (small boxes, or few atoms such as the solute of an ML/MM run).
        """
        x = positions.detach().to(torch.float64) * self.nm
        if not bool(pbc.any()):
            cell = torch.eye(3, dtype=torch.float64)
            periodic = torch.zeros(3, dtype=torch.float64)
            widths = torch.full((3,), 1e300, dtype=torch.float64)
        else:
            cell = self._periodic_cell(box, pbc)
            periodic = pbc.to(torch.float64)
            volume = torch.abs(torch.linalg.det(cell))
            widths = volume / torch.linalg.vector_norm(torch.linalg.cross(cell.roll(-1, 0), cell.roll(-2, 0)), dim=1)
            widths = torch.where(pbc, widths, torch.full_like(widths, 1e300))
        if bool((widths >= self.cutoff_A).all()) and x.size(0) > self.all_pairs_atoms:
            edge_index, shifts = self._pairs_by_cells(x, cell, periodic, widths)
        else:
            edge_index, shifts = self._pairs_by_images(x, cell, periodic, widths)
        return edge_index, shifts.to(self.compute_dtype)

    def _pairs_by_cells(self, x: torch.Tensor, cell: torch.Tensor, periodic: torch.Tensor,
                        widths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Cell list: atoms binned into cells at least one cutoff wide, then for the zero offset and
        the 13 "positive" neighbour-cell offsets all atom pairs of (cell, neighbour cell) at once,
        cells padded to the fullest one; every pair found once, then added in both directions."""
        n_atoms = x.size(0)
        cutoff = self.cutoff_A
        frac = x @ torch.linalg.inv(cell)
        wrap = -torch.floor(frac) * periodic                 # whole box vectors that bring atoms into the box
        frac = frac + wrap
        xw = x + wrap @ cell
        # periodic directions: [0, 1) in n = floor(width / cutoff) cells; others (Å, unit row): span / cutoff
        low = torch.where(periodic > 0, torch.zeros_like(periodic), frac.min(0)[0])
        span = torch.where(periodic > 0, torch.ones_like(periodic), (frac.max(0)[0] - low).clamp(min=1e-6))
        length = torch.where(periodic > 0, widths, span)
        n_cells = torch.clamp(torch.floor(length / cutoff), min=1).long()
        index = torch.floor((frac - low) / span * n_cells).long()
        index = torch.minimum(torch.clamp(index, min=0), n_cells - 1)
        n0, n1, n2 = int(n_cells[0]), int(n_cells[1]), int(n_cells[2])
        total = n0 * n1 * n2
        cell_id = (index[:, 0] * n1 + index[:, 1]) * n2 + index[:, 2]
        order = torch.argsort(cell_id)
        counts = torch.bincount(cell_id, minlength=total)
        starts = torch.cumsum(counts, 0) - counts
        width = int(counts.max())
        rank = torch.arange(n_atoms) - starts[cell_id[order]]
        members = torch.full((total, width), -1, dtype=torch.long)            # atom ids per cell, -1 = empty
        members[cell_id[order], rank] = order
        padded = torch.zeros(total, width, 3, dtype=torch.float64)
        padded[cell_id[order], rank] = xw[order]
        ids = torch.arange(total)
        coords = torch.stack([ids // (n1 * n2), (ids // n2) % n1, ids % n2], dim=1)
        is_periodic = periodic > 0
        step = torch.tensor([-1, 0, 1])
        rows: List[torch.Tensor] = []
        cols: List[torch.Tensor] = []
        shifts: List[torch.Tensor] = []
        block = max(1, self.pair_block // (width * width))
        offsets = torch.cartesian_prod(step, step, step)
        key = offsets[:, 0] * 9 + offsets[:, 1] * 3 + offsets[:, 2]
        for offset in offsets[key >= 0]:                     # the reverse offset finds the same pairs
            zero = bool((offset == 0).all())
            for first in range(0, total, block):
                last = min(total, first + block)
                target = coords[first:last] + offset
                image = torch.where(is_periodic, torch.div(target, n_cells, rounding_mode="floor"),
                                    torch.zeros_like(target))
                target = target - image * n_cells
                inside = ((target >= 0) & (target < n_cells)).all(-1)          # non-periodic edges
                target = torch.minimum(torch.clamp(target, min=0), n_cells - 1)
                other = (target[:, 0] * n1 + target[:, 1]) * n2 + target[:, 2]
                image_shift = image.to(torch.float64) @ cell
                r = (padded[other] + image_shift.unsqueeze(1)).unsqueeze(1) - padded[first:last].unsqueeze(2)
                i = members[first:last].unsqueeze(2)                            # (c, a, 1)
                j = members[other].unsqueeze(1)                                 # (c, 1, b)
                once = i < j if zero else i >= 0                    # zero offset: same cell, each pair twice
                keep = once & (i >= 0) & (j >= 0) & inside.view(-1, 1, 1) & ((r * r).sum(-1) < cutoff * cutoff)
                found = torch.nonzero(keep)
                c, a, b = found[:, 0], found[:, 1], found[:, 2]
                ii = members[first:last][c, a]
                jj = members[other][c, b]
                rows.append(ii)
                cols.append(jj)
                shifts.append((wrap[jj] - wrap[ii] + image[c].to(torch.float64)) @ cell)
        i_all, j_all, s_all = torch.cat(rows), torch.cat(cols), torch.cat(shifts)
        edge_index = torch.stack([torch.cat([i_all, j_all]), torch.cat([j_all, i_all])])
        return edge_index, torch.cat([s_all, -s_all])

    def _pairs_by_images(self, x: torch.Tensor, cell: torch.Tensor, periodic: torch.Tensor,
                         widths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Every pair, each fractional difference reduced to the minimum image, then all images in reach."""
        n = x.size(0)
        cutoff = self.cutoff_A
        reach = torch.clamp(torch.ceil(cutoff / widths - 0.5), min=0) * periodic
        ranges = [torch.arange(-int(reach[k]), int(reach[k]) + 1, dtype=torch.float64) for k in range(3)]
        images = torch.cartesian_prod(ranges[0], ranges[1], ranges[2]).reshape(-1, 3)
        frac = x @ torch.linalg.inv(cell)
        rows: List[torch.Tensor] = []
        cols: List[torch.Tensor] = []
        shifts: List[torch.Tensor] = []
        block = max(1, self.pair_block // max(1, n * images.size(0)))
        j_all = torch.arange(n)
        for start in range(0, n, block):
            stop = min(n, start + block)
            d = frac.unsqueeze(0) - frac[start:stop].unsqueeze(1)                 # (b, n, 3)
            wrap = -torch.round(d) * periodic                                     # minimum image
            s = (wrap + d).unsqueeze(2) + images.view(1, 1, -1, 3)                # (b, n, m, 3)
            r2 = ((s @ cell) ** 2).sum(-1)
            i_idx = torch.arange(start, stop).view(-1, 1, 1)
            self_pair = (i_idx == j_all.view(1, -1, 1)) & (images.abs().sum(-1) == 0).view(1, 1, -1)
            found = torch.nonzero((r2 < cutoff * cutoff) & ~self_pair)
            ii, jj, mm = found[:, 0], found[:, 1], found[:, 2]
            rows.append(ii + start)
            cols.append(jj)
            shifts.append(((wrap[ii, jj] + images[mm]) @ cell))
        return torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(shifts)

    def _pairs_from_list(self, pairs: torch.Tensor, pair_shifts: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """GROMACS pairs (a, b, shift), distance x[a] - x[b] + shift, as edges in both directions."""
        a = pairs[:, 0].long()
        b = pairs[:, 1].long()
        s = pair_shifts.detach().to(self.compute_dtype) * self.nm
        edge_index = torch.stack([torch.cat([b, a]), torch.cat([a, b])])
        return edge_index, torch.cat([s, -s])


class PositionsWithForces(NNPotModule):
    def forward(self, positions: torch.Tensor, numbers: torch.Tensor, box: torch.Tensor,
                pbc: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        self._check_atoms(positions, numbers)
        self._check_box(box, pbc)
        if self._is_grompp_check(positions):
            return torch.zeros((), dtype=torch.float64), torch.zeros_like(positions)
        edge_index, shifts = self._pairs_in_box(positions, box, pbc)
        return self._energy_forces(positions, numbers, edge_index, shifts, True)


class PositionsEnergy(NNPotModule):
    def forward(self, positions: torch.Tensor, numbers: torch.Tensor, box: torch.Tensor,
                pbc: torch.Tensor) -> torch.Tensor:
        self._check_atoms(positions, numbers)
        self._check_box(box, pbc)
        if self._is_grompp_check(positions):
            return (positions * 0.0).sum().to(torch.float64)
        edge_index, shifts = self._pairs_in_box(positions, box, pbc)
        return self._energy_forces(positions, numbers, edge_index, shifts, False)[0]


class PairsWithForces(NNPotModule):
    def forward(self, positions: torch.Tensor, numbers: torch.Tensor, pairs: torch.Tensor,
                pair_shifts: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        self._check_atoms(positions, numbers)
        self._check_pairs(pairs, pair_shifts)
        if self._is_grompp_check(positions):
            return torch.zeros((), dtype=torch.float64), torch.zeros_like(positions)
        edge_index, shifts = self._pairs_from_list(pairs, pair_shifts)
        return self._energy_forces(positions, numbers, edge_index, shifts, True)


class PairsEnergy(NNPotModule):
    def forward(self, positions: torch.Tensor, numbers: torch.Tensor, pairs: torch.Tensor,
                pair_shifts: torch.Tensor) -> torch.Tensor:
        self._check_atoms(positions, numbers)
        self._check_pairs(pairs, pair_shifts)
        if self._is_grompp_check(positions):
            return (positions * 0.0).sum().to(torch.float64)
        edge_index, shifts = self._pairs_from_list(pairs, pair_shifts)
        return self._energy_forces(positions, numbers, edge_index, shifts, False)[0]


WRAPPERS = {
    ("positions", True): PositionsWithForces,
    ("positions", False): PositionsEnergy,
    ("pairs", True): PairsWithForces,
    ("pairs", False): PairsEnergy,
}


def compile_nnpot(model: nn.Module, path, *, layout: str = "positions", return_forces: bool = True,
                  precision: str = "float32", metadata: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Write `model` (an ffkit ForceField) as a GROMACS NNPot artifact at `path`; returns its metadata.

    GROMACS always passes float32 positions; `precision` is the dtype the model computes in.
    `metadata` (e.g. from `ffkit.artifact.metadata`) is completed with the NNPot fields.
    """
    if layout not in LAYOUTS:
        raise FFKitError(f"unknown NNPot input layout {layout!r}; use 'positions' (GROMACS 2025 and 2026) "
                         "or 'pairs' (GROMACS 2026: atom-pairs and pair-shifts from GROMACS's pair list)")
    compute_dtype = torch_dtype(precision, what="NNPot precision")
    path = Path(path)
    if path.suffix != ".pt":
        raise FFKitError(f"{path}: GROMACS loads NNPot models only from files ending in .pt; "
                         f"use --out {path.with_suffix('.pt')}")
    with torch.no_grad():               # a TorchScript model's deepcopy is otherwise recorded by autograd
        wrapped = copy.deepcopy(model)
    for p in wrapped.parameters():
        p.requires_grad_(False)
    wrapped = wrapped.to(compute_dtype).eval()
    module = WRAPPERS[(layout, return_forces)](wrapped, layout, compute_dtype)
    meta = dict(metadata) if metadata else artifact_metadata(model, "gromacs", torch.float32)
    meta.update(nnpot_fields(layout, return_forces, precision, float(model.cutoff)))
    scripted = torch.jit.script(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(path), _extra_files={"metadata.json": json.dumps(meta, indent=1)})
    return meta


def nnpot_fields(layout: str, return_forces: bool, precision: str, model_cutoff_A: float) -> Dict[str, Any]:
    """The metadata entries that make an artifact an NNPot artifact (docs/artifact.md)."""
    return {
        "engine": "gromacs",
        "dtype": "float32",
        "compute_dtype": precision,
        "layout": layout,
        "mdp_inputs": list(LAYOUTS[layout]),
        "returns": ["energy", "forces"] if return_forces else ["energy"],
        # what the artifact takes and returns; the trained model inside works in model_units
        "units": dict(INTERFACE_UNITS),
        "cutoff": model_cutoff_A / NM_TO_ANGSTROM,
        "model_units": dict(UNITS),
        "model_cutoff_A": model_cutoff_A,
        "gromacs_min_version": 2026 if layout == "pairs" else 2025,
    }


def compile_nnpot_from_checkpoint(model: nn.Module, checkpoint: Dict[str, Any], path, *, layout: str = "positions",
                                  return_forces: bool = True, precision: str = "float32",
                                  test_metrics: Optional[Dict[str, float]] = None) -> Dict[str, Any]:
    """`ffkit compile CHECKPOINT --engine gromacs`: the NNPot artifact with the checkpoint's metadata."""
    meta = artifact_metadata(model, "gromacs", torch.float32, checkpoint, test_metrics)
    return compile_nnpot(model, path, layout=layout, return_forces=return_forces, precision=precision, metadata=meta)


def compile_nnpot_from_artifact(source, path, *, layout: str = "positions", return_forces: bool = True,
                                precision: str = "float32") -> Dict[str, Any]:
    """An NNPot artifact from a LAMMPS-convention ffkit artifact (`ffkit compile` without --engine).

    That artifact holds the whole trained model as its submodule `model`, so no checkpoint is
    needed: the model is wrapped as it is, and the source's metadata (training-data hash, test
    metrics) is kept, with `source_artifact` naming the file it came from.
    """
    module, meta = load_artifact(source, engine="lammps")
    if not hasattr(module, "model"):
        raise FFKitError(f"{source}: this LAMMPS artifact has no `model` submodule (written by another ffkit "
                         "version?); compile the checkpoint with `ffkit compile CHECKPOINT --engine gromacs`")
    meta = {**meta, "source_artifact": str(Path(source).resolve()), "source_dtype": meta["dtype"]}
    return compile_nnpot(module.model, path, layout=layout, return_forces=return_forces, precision=precision,
                         metadata=meta)
