"""`pair_style hybridff` (ML/MM in LAMMPS): an ffkit model overlaid on LAMMPS's own MM styles, with
the MM interactions between ML atoms removed, as GROMACS's NNPot mechanical embedding does.

The system is the ML/MM example's: the first rMD17 ethanol test frame, typed OPLS-AA, in the DeePMD
water box as SPC/E (174 atoms). Every reference is built from LAMMPS's own means, in the real `lmp`:
- cut-off Coulomb: a hand-built `hybrid/overlay` whose MM style is simply not assigned to ML-ML
  type pairs;
- PPPM: every ML pair made a 1-2 neighbour with special factor 0, so that LAMMPS's coul/long removes
  each pair's reciprocal-space share itself (what hybridff computes explicitly);
- LAMMPS's `fix numdiff` and `fix numdiff/virial` for forces and pressure;
- `mpirun -np 2` against one rank.
"""

from itertools import combinations

import numpy as np
import pytest
from ase.io import read

from ffkit.solvation import order_waters, solvate
from ffkit_lammps_adapter.mlmm import SPECIAL_BONDS, elements, ml_types, pair_coeff_lines, write_mlmm_data
from lammps_harness import error_line, read_dump, run_lmp, thermo_rows, write_toy_artifact

pytestmark = pytest.mark.slow

HEAD = """units real
atom_style full
atom_modify map array
bond_style harmonic
angle_style harmonic
dihedral_style multi/harmonic
read_data system.data {read_extra}
{special}
"""
PAIR = """pair_style {pair} ffkit {mm} {cutoff}
pair_coeff * * ffkit {model} {elements}
include {coeffs}
"""
TAIL = """compute vir all pressure NULL virial
thermo_style custom step pe evdwl ecoul elong ebond eangle edihed c_vir[*]
thermo_modify format float %.16g
dump d all custom 1 dump.forces id fx fy fz
dump_modify d sort id format float %.17g
run 0
"""
CUT = 6.0
DELETE_ML_TERMS = f"group ml type {ml_types()}\ndelete_bonds ml multi remove special\n"


@pytest.fixture(scope="module")
def system(tmp_path_factory, reference_data):
    """Data file, a float64 artifact for C, H, O and the MM pair coefficients."""
    work = tmp_path_factory.mktemp("mlmm")
    solute = read(reference_data / "rmd17_ethanol" / "test_MD.xyz", index=0)
    water = order_waters(read(reference_data / "water_deepmd" / "water.extxyz", index=0))
    atoms, _ = solvate(solute, water)
    write_mlmm_data(work / "system.data", atoms, solute)
    write_toy_artifact(work / "toy.pt", ("C", "H", "O"), 4.0, "float64")
    ml = {int(t) for t in ml_types().split()}
    for style in ("lj/cut/coul/cut", "lj/cut/coul/long"):
        lines = pair_coeff_lines(style).splitlines()
        name = style.split("/")[-1]
        (work / f"all_{name}.lmp").write_text("\n".join(lines) + "\n")
        mm_only = [line for line in lines if not {int(line.split()[1]), int(line.split()[2])} <= ml]
        (work / f"mm_only_{name}.lmp").write_text("\n".join(mm_only) + "\n")
    return {"dir": work, "n_atoms": len(atoms), "n_ml": len(solute)}


def _run(system, tmp_path, pair: str, coeffs: str, mm="lj/cut/coul/cut", middle=DELETE_ML_TERMS, kspace="",
         nprocs=1, read_extra="", expect_ok=True, tail=TAIL, cutoff=CUT):
    for name in ("system.data", "toy.pt", coeffs):
        (tmp_path / name).symlink_to(system["dir"] / name)
    script = HEAD.format(read_extra=read_extra, special=SPECIAL_BONDS) + PAIR.format(
        pair=pair, mm=mm, cutoff=cutoff, model="toy.pt", elements=" ".join(elements()), coeffs=coeffs) \
        + kspace + middle + tail
    out = run_lmp(tmp_path, script, nprocs=nprocs, expect_ok=expect_ok)
    if not expect_ok:
        return out
    row = thermo_rows(out)[-1]
    return {"row": row, "forces": read_dump(tmp_path / "dump.forces")[0][:, 1:4], "output": out}


def _assert_same(a, b, tol):
    scale = np.abs(a["forces"]).max()
    assert scale > 1.0
    assert np.abs(a["forces"] - b["forces"]).max() <= tol * scale
    for key in ("PotEng", "E_vdwl", "E_coul", "E_long", "E_bond", "E_angle", "E_dihed"):
        assert a["row"][key] == pytest.approx(b["row"][key], rel=tol, abs=tol * abs(a["row"]["PotEng"]))
    virial = np.array([a["row"][f"c_vir[{m}]"] for m in range(1, 7)])
    other = np.array([b["row"][f"c_vir[{m}]"] for m in range(1, 7)])
    assert np.abs(virial - other).max() <= tol * np.abs(virial).max()


def test_hybridff_equals_hand_built_overlay(system, tmp_path):
    """Cut-off Coulomb: hybridff with the MM style on every type pair equals hybrid/overlay whose MM
    style is not assigned to ML-ML type pairs, energy split, forces and virial to float64 rounding."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours = _run(system, tmp_path / "a", "hybridff", "all_cut.lmp")
    hand = _run(system, tmp_path / "b", "hybrid/overlay", "mm_only_cut.lmp")
    assert "MM interactions between ML atoms (types 1 2 3 4 5) are replaced" in ours["output"]
    _assert_same(ours, hand, 1e-10)
    assert ours["row"]["E_bond"] > 0 and ours["row"]["E_dihed"] == 0.0    # water bonds stay; ethanol's are gone


def test_hybridff_removes_the_kspace_share_of_ml_pairs(system, tmp_path):
    """PPPM: equal to LAMMPS removing each ML pair itself (all ML pairs 1-2 neighbours, factor 0)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kspace = "kspace_style pppm 1e-6\n"
    ours = _run(system, tmp_path / "a", "hybridff", "all_long.lmp", mm="lj/cut/coul/long", kspace=kspace)
    assert "their kspace share included" in ours["output"]
    pairs = list(combinations(range(1, system["n_ml"] + 1), 2))
    every_pair_bonded = "bond_coeff 6 0.0 1.0\n" + DELETE_ML_TERMS + "".join(
        f"create_bonds single/bond 6 {i} {j} special {'yes' if k == len(pairs) - 1 else 'no'}\n"
        for k, (i, j) in enumerate(pairs))
    hand = _run(system, tmp_path / "b", "hybrid/overlay", "all_long.lmp", mm="lj/cut/coul/long", kspace=kspace,
                middle=every_pair_bonded, read_extra="extra/bond/per/atom 8 extra/special/per/atom 8 extra/bond/types 1")
    _assert_same(ours, hand, 1e-9)
    # the share is not negligible: without it the energy differs (ML charges are -0.68 .. +0.42 e)
    plain = _run(system, tmp_path, "hybrid/overlay", "mm_only_long.lmp", mm="lj/cut/coul/long", kspace=kspace)
    assert abs(plain["row"]["PotEng"] - ours["row"]["PotEng"]) > 1.0    # kcal/mol


def test_hybridff_one_rank_equals_two(system, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    serial = _run(system, tmp_path / "a", "hybridff", "all_cut.lmp")
    parallel = _run(system, tmp_path / "b", "hybridff", "all_cut.lmp", nprocs=2)
    _assert_same(serial, parallel, 1e-10)


def test_hybridff_forces_and_pressure_equal_finite_differences(system, tmp_path):
    """LAMMPS's own finite differences: forces (fix numdiff) and the virial (fix numdiff/virial)."""
    numdiff = DELETE_ML_TERMS + "fix forces all numdiff 1 1e-5\nfix virial all numdiff/virial 1 1e-6\n"
    tail = TAIL.replace("c_vir[*]", "c_vir[*] f_virial[*]").replace("id fx fy fz", "id fx fy fz f_forces[*]")
    result = _run(system, tmp_path, "hybridff", "all_cut.lmp", middle=numdiff, tail=tail)
    cols = read_dump(tmp_path / "dump.forces")[0]
    analytic, numeric = cols[:, 1:4], cols[:, 4:7]
    assert np.abs(analytic - numeric).max() <= 1e-5 * np.abs(analytic).max()
    row = result["row"]
    virial = np.array([row[f"c_vir[{m}]"] for m in range(1, 7)])    # xx yy zz xy xz yz
    strained = np.array([row[f"f_virial[{m}]"] for m in (1, 2, 3, 6, 5, 4)])    # numdiff: xx yy zz yz xz xy
    assert np.abs(virial - strained).max() <= 1e-4 * np.abs(virial).max()


def test_hybridff_refuses_mm_terms_inside_the_ml_region(system, tmp_path):
    """Without delete_bonds the ethanol's own bonds, angles and dihedrals would be counted twice."""
    out = _run(system, tmp_path, "hybridff", "all_cut.lmp", middle="", expect_ok=False)
    line = error_line(out)
    assert "(8 bonds, 13 angles, 12 dihedrals, 0 impropers" in line, line
    assert f"'group ml type {ml_types()}' then 'delete_bonds ml multi remove special'" in line


def test_hybridff_refuses_an_ml_region_wider_than_the_coulomb_cutoff(system, tmp_path):
    """Under PPPM the reciprocal share is removed pair by pair, so every ML pair must be within the cutoff."""
    out = _run(system, tmp_path, "hybridff", "all_long.lmp", mm="lj/cut/coul/long", kspace="kspace_style pppm 1e-4\n",
               cutoff=3.0, expect_ok=False)
    line = error_line(out)
    assert "the ML region must lie within the Coulomb cutoff 3" in line and "instead of 72" in line, line


def test_hybridff_refuses_kspace_without_the_coulomb_style_on_ml_pairs(system, tmp_path):
    """hybridff removes the kspace share through the Coulomb style, so it must cover the ML-ML pairs."""
    out = _run(system, tmp_path, "hybridff", "mm_only_long.lmp", mm="lj/cut/coul/long",
               kspace="kspace_style pppm 1e-4\n", expect_ok=False)
    assert "the Coulomb sub-style must also be assigned to the ML-ML type pairs" in out, out[-1500:]


def test_hybridff_per_atom_energy_and_virial_sum_to_the_totals(system, tmp_path):
    """compute pe/atom and stress/atom (the ML/MM correction tallied per atom too) add up to pe and the virial."""
    tail = TAIL.replace("compute vir all pressure NULL virial", "compute vir all pressure NULL virial\n"
                        "compute epa all pe/atom pair\ncompute spa all stress/atom NULL virial\n"
                        "compute esum all reduce sum c_epa\ncompute ssum all reduce sum c_spa[1] c_spa[2] c_spa[3] "
                        "c_spa[4] c_spa[5] c_spa[6]").replace("c_vir[*]", "c_vir[*] c_esum c_ssum[*] vol")
    row = _run(system, tmp_path, "hybridff", "all_cut.lmp", tail=tail)["row"]
    assert row["c_esum"] == pytest.approx(row["E_vdwl"] + row["E_coul"], rel=1e-12)
    virial = np.array([row[f"c_vir[{m}]"] for m in range(1, 7)])
    summed = -np.array([row[f"c_ssum[{m}]"] for m in range(1, 7)]) / row["Volume"]
    np.testing.assert_allclose(summed, virial, rtol=0, atol=1e-9 * np.abs(virial).max())
