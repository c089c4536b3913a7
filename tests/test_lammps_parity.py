"""LAMMPS (pair_style ffkit) gives the numbers the Python side gives for the same artifact and frame.

Python side: ffkit.calculator.FFKitCalculator for energy, forces and virial (stress x volume), and the
artifact evaluated on ffkit.neighbors.ghost_layout for per-atom energies and virials.
float64: <= 1e-8 relative. Also: units real vs metal, and hybrid/overlay with LAMMPS's lj/cut equals the sum of its parts.
"""

from pathlib import Path

import ase.io
import numpy as np
import pytest

from ffkit.artifact import compile_model
from ffkit.calculator import FFKitCalculator
from ffkit.model.tiers import build_model
from lammps_harness import EV_TO_KCAL, lammps_single_point, read_dump, reference_per_atom, run_lmp, write_data, \
    write_toy_artifact

WATER = ("O", "H")
ETHANOL_TYPES = ("C", "O", "H")  # LAMMPS type order deliberately differs from the model's (H, C, O)


def _ffkit_artifact(path: Path, tier: str, symbols, dtype: str = "float64") -> Path:
    from ase.data import atomic_numbers

    model = build_model(tier, sorted(atomic_numbers[s] for s in symbols))
    compile_model(model, path, dtype=dtype)
    return path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = tmp_path_factory.mktemp("artifacts")
    return {
        "toy-water": write_toy_artifact(d / "toy_water.pt", WATER, cutoff=5.0),
        "toy-ethanol": write_toy_artifact(d / "toy_ethanol.pt", ("H", "C", "O"), cutoff=5.0),
        "toy-water-f32": write_toy_artifact(d / "toy_water32.pt", WATER, cutoff=5.0, dtype="float32"),
        "fast-water": _ffkit_artifact(d / "fast_water.pt", "fast", WATER),
        "accurate-water": _ffkit_artifact(d / "accurate_water.pt", "accurate", WATER),
        "mm-water": _ffkit_artifact(d / "mm_water.pt", "mm", WATER),
        "fast-ethanol": _ffkit_artifact(d / "fast_ethanol.pt", "fast", ("H", "C", "O")),
    }


def _water(reference_data, index):
    return ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=index)


def _ethanol_in_box(reference_data, index):
    atoms = ase.io.read(reference_data / "rmd17_ethanol" / "test_MD.xyz", index=index)
    atoms.set_cell([22.0, 23.0, 24.0])
    atoms.center()
    atoms.pbc = True
    return atoms


def _python_side(artifact: Path, atoms):
    """Energy, forces and virial from FFKitCalculator; per-atom energies and virials from the artifact."""
    probe = atoms.copy()
    probe.calc = FFKitCalculator(artifact)
    stress = probe.get_stress(voigt=True)  # first call: energy, forces and stress in one evaluation
    xx, yy, zz, yz, xz, xy = -stress * probe.get_volume()
    return {"energy": probe.get_potential_energy(), "forces": probe.get_forces(),
            "virial": np.array([xx, yy, zz, xy, xz, yz]), **reference_per_atom(artifact, atoms)}


def _assert_parity(lmp, ref, rtol):
    def close(name, a, b):
        scale = max(np.abs(b).max(), 1e-300)
        err = np.abs(np.asarray(a) - np.asarray(b)).max() / scale
        assert err <= rtol, f"{name}: relative error {err:.3g} > {rtol:g}"

    close("energy", lmp["energy"], ref["energy"])
    close("forces", lmp["forces"], ref["forces"])
    close("virial", lmp["virial"], ref["virial"])
    close("per-atom energy", lmp["energies"], ref["energies"])
    close("per-atom virial", lmp["virials"], ref["virials"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["toy-water", "fast-water", "accurate-water", "mm-water"])
@pytest.mark.parametrize("frame", [0, 137, 399])
def test_water_parity_float64(tmp_path, reference_data, artifacts, model, frame):
    atoms = _water(reference_data, frame)
    art = artifacts[model]
    lmp = lammps_single_point(tmp_path, atoms, WATER, f"pair_style ffkit\npair_coeff * * {art} O H")
    _assert_parity(lmp, _python_side(art, atoms), 1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["toy-ethanol", "fast-ethanol"])
@pytest.mark.parametrize("frame", [0, 500])
def test_ethanol_in_large_box_parity_float64(tmp_path, reference_data, artifacts, model, frame):
    atoms = _ethanol_in_box(reference_data, frame)
    art = artifacts[model]
    lmp = lammps_single_point(tmp_path, atoms, ETHANOL_TYPES, f"pair_style ffkit\npair_coeff * * {art} C O H")
    _assert_parity(lmp, _python_side(art, atoms), 1e-8)


def test_water_parity_float32(tmp_path, reference_data, artifacts):
    """float32 artifacts: positions converted to float32, results accumulated in double."""
    atoms = _water(reference_data, 5)
    art = artifacts["toy-water-f32"]
    lmp = lammps_single_point(tmp_path, atoms, WATER, f"pair_style ffkit\npair_coeff * * {art} O H")
    _assert_parity(lmp, _python_side(art, atoms), 2e-5)


def test_units_real_equals_metal(tmp_path, reference_data, artifacts):
    """20 MD steps in units real and in units metal give the same trajectory after unit conversion."""
    atoms = _water(reference_data, 11)
    art = artifacts["fast-water"]
    results = {}
    for units, dt in (("metal", 0.0005), ("real", 0.5)):
        d = tmp_path / units
        d.mkdir()
        write_data(d / "w.data", atoms, WATER, units=units)
        run_lmp(d, f"""units {units}
atom_style atomic
read_data w.data
pair_style ffkit
pair_coeff * * {art} O H
velocity all create 300 4928459 loop geom
fix nve all nve
timestep {dt}
dump traj all custom 20 dump.traj id x y z fx fy fz
dump_modify traj sort id format float %.17g
thermo_style custom step pe ke
thermo_modify format float %.17g
run 20
""")
        results[units] = read_dump(d / "dump.traj")
    for step in (0, 20):
        metal, real = results["metal"][step], results["real"][step]
        np.testing.assert_allclose(real[:, 1:4], metal[:, 1:4], rtol=0, atol=1e-8)
        np.testing.assert_allclose(real[:, 4:7] / EV_TO_KCAL, metal[:, 4:7], rtol=0,
                                   atol=1e-6 * np.abs(metal[:, 4:7]).max())


@pytest.mark.slow
def test_hybrid_overlay_equals_sum_of_parts(tmp_path, reference_data, artifacts):
    atoms = _water(reference_data, 42)
    art = artifacts["toy-water"]
    lj = "pair_style lj/cut 6.0\npair_coeff * * 0.0067 3.16\npair_coeff 2 2 0.0 1.0\npair_coeff 1 2 0.0 1.0"
    ml = f"pair_style ffkit\npair_coeff * * {art} O H"
    both = (f"pair_style hybrid/overlay ffkit lj/cut 6.0\npair_coeff * * ffkit {art} O H\n"
            "pair_coeff * * lj/cut 0.0067 3.16\npair_coeff 2 2 lj/cut 0.0 1.0\npair_coeff 1 2 lj/cut 0.0 1.0")
    parts = [lammps_single_point(tmp_path / name, atoms, WATER, lines) for name, lines in (("ml", ml), ("lj", lj))]
    total = lammps_single_point(tmp_path / "both", atoms, WATER, both)
    assert abs(parts[1]["energy"]) > 1e-3  # the MM part really contributes
    for key in ("energy", "forces", "virial", "energies", "virials"):
        summed = parts[0][key] + parts[1][key]
        np.testing.assert_allclose(total[key], summed, rtol=0, atol=1e-10 * max(np.abs(summed).max(), 1.0),
                                   err_msg=key)


@pytest.mark.slow
def test_hybrid_overlay_ml_on_some_types(tmp_path, reference_data, artifacts):
    """`NULL` types are invisible to the model: ML on O only equals the model on the oxygen sub-system."""
    atoms = _water(reference_data, 42)
    art = artifacts["toy-water"]
    both = (f"pair_style hybrid/overlay ffkit lj/cut 6.0\npair_coeff * * ffkit {art} O NULL\n"
            "pair_coeff * * lj/cut 0.0 1.0")
    lmp = lammps_single_point(tmp_path, atoms, WATER, both)
    oxygen = atoms[atoms.numbers == 8]
    ref = _python_side(art, oxygen)
    assert abs(lmp["energy"] - ref["energy"]) <= 1e-8 * abs(ref["energy"])
    np.testing.assert_allclose(lmp["forces"][atoms.numbers == 8], ref["forces"], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(lmp["forces"][atoms.numbers == 1], 0.0)


@pytest.mark.slow
def test_float32_forces_do_not_depend_on_where_the_system_sits(tmp_path, reference_data):
    """The plugin forms pair vectors in double before rounding them to float32 (forward_pairs), so a
    float32 model gives the same forces on a water frame translated with its box by 1000 Å, or moved
    by half a box and wrapped. Rounding absolute coordinates (~1e-4 Å at 1000 Å) changed them by ~1e-4."""
    from model_helpers import perturbed_model

    art = tmp_path / "accurate32.pt"
    compile_model(perturbed_model("accurate", [1, 8]), art, dtype="float32")
    atoms = _water(reference_data, 3)
    half = atoms.cell.lengths() / 2
    moves = {"as read": "",
             "translated by 1000 Å with its box": "change_box all x delta 1000 1000 y delta 1000 1000 "
                                                  "z delta 1000 1000 remap units box",
             "moved by half a box, wrapped": f"displace_atoms all move {half[0]} {half[1]} {half[2]} units box"}
    runs = {name: lammps_single_point(tmp_path / str(k), atoms, WATER, f"pair_style ffkit\npair_coeff * * {art} O H",
                                      extra=extra) for k, (name, extra) in enumerate(moves.items())}
    reference = runs["as read"]
    scale = np.abs(reference["forces"]).max()
    for name, run in runs.items():
        error = np.abs(run["forces"] - reference["forces"]).max() / scale
        assert error <= 1e-6, f"{name}: forces differ by {error:.2g} of the largest"
        assert abs(run["energy"] - reference["energy"]) <= 1e-6 * abs(reference["energy"]), name
        np.testing.assert_allclose(run["virial"], reference["virial"], rtol=1e-6, atol=1e-6 * np.abs(
            reference["virial"]).max())
    assert not np.allclose(runs["translated by 1000 Å with its box"]["positions"], reference["positions"])
