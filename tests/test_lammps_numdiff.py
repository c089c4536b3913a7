"""LAMMPS's own finite differences agree with `pair_style ffkit`: `fix numdiff` with its forces and
`fix numdiff/virial` with its virial (the pressure's virial part), for a trained-size model of each
kind, in float64 (all on the hand-written kernel; `equivariant` with ghosts two cutoffs deep).
Independent of ffkit's Python side: LAMMPS displaces the atoms and strains the box."""

import ase.io
import numpy as np
import pytest

from ffkit.artifact import compile_model
from lammps_harness import read_dump, run_lmp, thermo_rows, write_data
from model_helpers import perturbed_model

SCRIPT = """units metal
atom_style atomic
atom_modify map array
boundary p p p
read_data system.data
pair_style ffkit
pair_coeff * * {model} {elements}
fix forces all numdiff 1 {delta}
fix virial all numdiff/virial 1 {strain}
compute vir all pressure NULL virial
thermo_style custom step pe c_vir[*] f_virial[*]
thermo_modify format float %.17g
dump d all custom 1 dump.forces id fx fy fz f_forces[1] f_forces[2] f_forces[3]
dump_modify d sort id format float %.17g
run 0
"""


def _ethanol_in_box(reference_data):
    atoms = ase.io.read(reference_data / "rmd17_ethanol" / "test_MD.xyz", index=250)
    atoms.set_cell([16.0, 17.0, 18.0])
    atoms.center()
    atoms.pbc = True
    return atoms


@pytest.mark.slow
@pytest.mark.parametrize("tier, system", [("accurate", "ethanol"), ("balanced", "water"), ("mm", "water"),
                                          ("fast", "ethanol"), ("equivariant", "ethanol")])
def test_forces_and_virial_equal_lammps_finite_differences(tmp_path, reference_data, tier, system):
    if system == "water":
        atoms = ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=11)
        elements, numbers = ("O", "H"), [1, 8]
    else:
        atoms = _ethanol_in_box(reference_data)
        elements, numbers = ("C", "O", "H"), [1, 6, 8]
    model = tmp_path / "model.pt"
    compile_model(perturbed_model(tier, numbers), model, dtype="float64")
    write_data(tmp_path / "system.data", atoms, elements)
    out = run_lmp(tmp_path, SCRIPT.format(model=model, elements=" ".join(elements), delta=1e-5, strain=1e-6))
    row = thermo_rows(out)[-1]
    cols = read_dump(tmp_path / "dump.forces")[0]
    analytic, numeric = cols[:, 1:4], cols[:, 4:7]
    scale = np.abs(analytic).max()
    assert scale > 0.1  # a model with real forces, not an all-zero pass
    assert np.abs(analytic - numeric).max() <= 1e-5 * scale
    virial = np.array([row[f"c_vir[{m}]"] for m in range(1, 7)])  # bar: xx yy zz xy xz yz
    strained = np.array([row[f"f_virial[{m}]"] for m in (1, 2, 3, 6, 5, 4)])  # Voigt order: xx yy zz yz xz xy
    assert np.abs(virial).max() > 1.0
    assert np.abs(virial - strained).max() <= 1e-5 * np.abs(virial).max()
