"""Real `gmx grompp` + `gmx mdrun` with ffkit NNPot artifacts (issue 4, tests 1 to 5).

Run when a GROMACS with NNPot is found (`FFKIT_GMX=/path/to/gmx`, or a build from
`ffkit deploy gromacs`); skipped otherwise, with the reason shown by `pytest -rs`.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read
from MDAnalysis.coordinates.TRR import TRRReader

from ffkit.artifact import compile_model
from ffkit.calculator import FFKitCalculator
from ffkit.errors import FFKitError
from ffkit.model.tiers import build_model
from ffkit.units import KJ_PER_MOL_PER_EV
from ffkit_gromacs.checks import NNPotPressureWarning
from ffkit_gromacs.engine import find_gmx, gmx_version, has_nnpot
from ffkit.opls_ethanol import type_atoms
from ffkit_gromacs.ethanol import RESIDUE, ethanol_atomtypes, ethanol_moleculetype
from ffkit_gromacs.nnpot import compile_nnpot, compile_nnpot_from_artifact
from ffkit_gromacs.runs import (Solute, drift_per_atom_ps, embedding_report, grompp, mdrun, molecule_interactions,
                                prepare_pure_nn, prepare_solvated, read_energies, read_forces)
from ffkit.solvation import order_waters
from ffkit_gromacs.topology import write_trr

pytestmark = pytest.mark.gromacs

RERUN = {"nsteps": "0", "nstcalcenergy": "1", "nstenergy": "1", "nstfout": "1", "gen-vel": "no"}
MODELS = Path(__file__).resolve().parents[1] / "benchmarks" / "models"   # trained by benchmarks/accuracy.py
TEN_PS = {"dt": "0.0005", "nsteps": "20000", "nstenergy": "20", "nstlog": "2000"}
# |drift| of the conserved energy. Measured on 2026.3: about 0.001 meV/atom/ps for both runs below
# (float32 noise on the slope ~0.001); docs/design.md §6 calls a few tenths good. Above this bound the
# integration (time step, force noise, a discontinuity in the model) is not conserving energy.
MAX_DRIFT_MEV_PER_ATOM_PS = 0.05


@pytest.fixture(scope="module")
def gmx():
    try:
        path = find_gmx()
    except FFKitError as exc:
        pytest.skip(str(exc))
    if path is None:
        pytest.skip("no GROMACS found: set FFKIT_GMX=/path/to/gmx (built with -DGMX_NNPOT=TORCH) "
                    "or run `ffkit deploy gromacs --source gromacs-2026.3.tar.gz`")
    ok, detail = has_nnpot(path)
    if not ok:
        pytest.skip(f"{path}: {detail}")
    return path


@pytest.fixture(scope="module")
def version(gmx):
    return gmx_version(gmx)[1]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = build_model("fast", [1, 8], [-13.7, -432.1], avg_neighbors=20.0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def ase_artifact(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("ase") / "lammps.pt"
    compile_model(model, path, dtype="float64")
    return path


def _float32_frames(reference_data, count=4):
    """Water frames with positions and box rounded to float32 nm, exactly what GROMACS holds."""
    frames = read(reference_data / "water_deepmd" / "water.extxyz", index=f"0:{40 * count}:40")
    for atoms in frames:
        atoms.positions = np.asarray(atoms.positions / 10.0, dtype=np.float32).astype(np.float64) * 10.0
        atoms.cell = np.asarray(np.asarray(atoms.cell) / 10.0, dtype=np.float32).astype(np.float64) * 10.0
    return frames


@pytest.mark.parametrize("layout", ["positions", "pairs"])
def test_rerun_of_water_frames_matches_the_ase_calculator(gmx, version, model, ase_artifact, reference_data,
                                                          tmp_path, layout):
    if layout == "pairs" and version < 2026:
        pytest.skip(f"the pair layout needs GROMACS 2026, this is {version}")
    frames = _float32_frames(reference_data)
    artifact = tmp_path / "model.pt"
    compile_nnpot(model, artifact, layout=layout)
    files = prepare_pure_nn(tmp_path / "run", frames[0], artifact, len(frames[0]), RERUN, residue="SOL")
    grompp(gmx, files)
    trajectory = write_trr(tmp_path / "frames.trr", frames)
    with TRRReader(str(trajectory), convert_units=False) as stored:   # compare on exactly what GROMACS reads
        for atoms, ts in zip(frames, stored):
            atoms.positions = ts.positions.astype(np.float64) * 10.0
    mdrun(gmx, files, deffnm="rerun", rerun=trajectory)
    energies = read_energies(files.directory / "rerun.edr")["NN Potential"]
    forces = read_forces(files.directory / "rerun.trr")
    assert len(energies) == len(frames) == len(forces)
    for atoms, energy, force in zip(frames, energies, forces):
        atoms.calc = FFKitCalculator(ase_artifact)
        ref_energy = atoms.get_potential_energy() * KJ_PER_MOL_PER_EV
        ref_forces = atoms.get_forces() * KJ_PER_MOL_PER_EV * 10.0
        assert energy == pytest.approx(ref_energy, rel=1e-5)
        scale = np.abs(ref_forces).max()
        np.testing.assert_allclose(force, ref_forces, atol=1e-4 * scale, rtol=0)


def _water_dimer_box():
    return Atoms("OH2OH2", positions=[[2, 2, 2], [2.96, 2, 2], [1.76, 2.93, 2],
                                       [4.8, 2.1, 2.2], [5.3, 2.9, 2.2], [5.3, 1.3, 2.1]],
                 cell=[14.0, 14.0, 14.0], pbc=True)


def test_unknown_element_is_named_at_mdrun(gmx, model, tmp_path):
    artifact = tmp_path / "model.pt"
    compile_nnpot(model, artifact)
    files = prepare_pure_nn(tmp_path, _water_dimer_box(), artifact, 3, {"nsteps": "1"})
    torch.manual_seed(0)
    compile_nnpot(build_model("fast", [8]).double(), artifact)   # swapped behind ffkit's back: knows O only
    grompp(gmx, files)  # grompp's own check (H at the origin) passes cleanly, without -maxwarn
    with pytest.raises(FFKitError, match=r"element\(s\) H \(Z=1\) in the NN input group are not in this model, "
                                         r"which knows O \(Z=8\)"):
        mdrun(gmx, files)
    with pytest.raises(FFKitError, match=r"element\(s\) H \(Z=1\) are not in the model, which knows O"):
        prepare_pure_nn(tmp_path / "again", _water_dimer_box(), artifact, 3)


def _set_mdp(files, **values):
    """Overwrite mdp settings by hand (bypassing ffkit's checks, as a user editing the file would)."""
    lines = []
    for line in files.mdp.read_text().splitlines():
        key = line.split("=")[0].strip().replace("-", "_")
        lines.append(f"{key.replace('_', '-')} = {values[key]}" if key in values else line)
    files.mdp.write_text("\n".join(lines) + "\n")


def test_wrong_layout_and_float64_artifacts_are_caught_by_grompp(gmx, model, tmp_path):
    artifact = tmp_path / "model.pt"
    compile_nnpot(model, artifact)
    files = prepare_pure_nn(tmp_path, _water_dimer_box(), artifact, 3, {"nsteps": "1"})
    _set_mdp(files, nnpot_model_input3="pbc", nnpot_model_input4="box")
    with pytest.raises(FFKitError, match=r"nnpot-model-input3 must be box"):
        grompp(gmx, files)
    lammps = tmp_path / "lammps.pt"
    compile_model(model, lammps, dtype="float64")
    _set_mdp(files, nnpot_model_input3="box", nnpot_model_input4="pbc", nnpot_modelfile=str(lammps.resolve()))
    with pytest.raises(FFKitError, match=r"error while checking NN model with a dummy input"):
        grompp(gmx, files)


def test_missing_model_file_is_named(gmx, model, tmp_path):
    artifact = tmp_path / "model.pt"
    compile_nnpot(model, artifact)
    files = prepare_pure_nn(tmp_path, _water_dimer_box(), artifact, 3, {"nsteps": "1"})
    grompp(gmx, files)
    artifact.rename(tmp_path / "moved.pt")
    with pytest.raises(FFKitError, match=r"Model file does not exist: .*model\.pt"):
        mdrun(gmx, files)


def test_gromacs_adds_no_nn_virial(gmx, model, tmp_path):
    """Why ffkit refuses NN + pressure coupling: the reported virial misses the NN term entirely."""
    artifact = tmp_path / "model.pt"
    compile_nnpot(model, artifact)
    atoms = _water_dimer_box()
    files = prepare_pure_nn(tmp_path, atoms, artifact, 3, {**RERUN, "nstcalcenergy": "1"})
    grompp(gmx, files)
    mdrun(gmx, files, deffnm="virial")
    reported = read_energies(files.directory / "virial.edr")["Vir-XX"][0]
    ase_path = tmp_path / "lammps.pt"
    compile_model(model, ase_path, dtype="float64")
    atoms.calc = FFKitCalculator(ase_path)
    virial_xx = -atoms.get_stress(voigt=False)[0, 0] * atoms.get_volume() * KJ_PER_MOL_PER_EV
    nn_term = -0.5 * virial_xx   # GROMACS virial is -1/2 sum r (x) F
    assert abs(nn_term) > 1.0, "the test needs a sizeable NN virial"
    assert abs(reported) < 0.05 * abs(nn_term), (
        f"GROMACS now reports an NN virial ({reported:.2f} vs {nn_term:.2f} kJ/mol): revisit "
        "ffkit_gromacs.checks.check_pressure_coupling")


def test_gromacs_itself_accepts_nn_with_pressure_coupling(gmx, model, tmp_path):
    """So ffkit's refusal (checks.check_pressure_coupling) is the only guard: grompp and mdrun run an
    NN system under C-rescale without a word, with the NN virial missing from the pressure."""
    artifact = tmp_path / "model.pt"
    compile_nnpot(model, artifact)
    npt = {"nsteps": "2", "tcoupl": "v-rescale", "tc-grps": "System", "tau-t": "0.1", "ref-t": "300",
           "pcoupl": "C-rescale", "tau-p": "5", "ref-p": "1", "compressibility": "4.5e-5"}
    with pytest.raises(FFKitError, match="pcoupl = c-rescale with nnpot-active = yes"):
        prepare_pure_nn(tmp_path, _water_dimer_box(), artifact, 3, npt)
    with pytest.warns(NNPotPressureWarning, match="WRONG PRESSURE"):
        files = prepare_pure_nn(tmp_path, _water_dimer_box(), artifact, 3, npt, allow_wrong_pressure=True)
    report = grompp(gmx, files)
    assert "WARNING" not in report.stdout + report.stderr
    mdrun(gmx, files)
    assert (files.directory / "md.edr").is_file()


def _record(request, tmp_path, name: str, result: dict) -> None:
    """Print a measured result and keep it in pytest's cache folder (.pytest_cache/d/gromacs/), or
    in the test's tmp_path when the cache is switched off (-p no:cacheprovider)."""
    cache = getattr(request.config, "cache", None)
    path = (Path(cache.mkdir("gromacs")) if cache else tmp_path) / f"{name}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{name}: {json.dumps(result)}\n  -> {path}")


def _final_frame(files):
    """The last frame (ASE Atoms, Å) from mdrun's confout md.gro; molecules may be split across the box."""
    atoms = read(files.directory / "md.gro")
    atoms.pbc = True
    return atoms


@pytest.mark.slow
def test_nve_of_pure_nn_water_is_stable_for_10_ps(gmx, reference_data, tmp_path, request):
    """Issue 4, test 2: 64 NN waters (trained `fast` model), 10 ps NVE at dt 0.5 fs."""
    artifact = tmp_path / "water.pt"
    compile_nnpot_from_artifact(MODELS / "water_deepmd_fast.pt", artifact)
    water = order_waters(read(reference_data / "water_deepmd" / "water.extxyz", index=0))
    files = prepare_pure_nn(tmp_path / "nve", water, artifact, 3, TEN_PS, residue="SOL")
    grompp(gmx, files)
    mdrun(gmx, files, timeout=3600)
    energies = read_energies(files.directory / "md.edr")
    drift = drift_per_atom_ps(energies, len(water))
    result = {"ps": float(energies["Time"][-1]), "atoms": len(water), "drift_meV_per_atom_ps": drift,
              "temperature_K": [float(energies["Temperature"].min()), float(energies["Temperature"].max())]}
    _record(request, tmp_path, "nve_pure_nn_water", result)
    assert result["ps"] == pytest.approx(10.0)
    assert np.isfinite(energies["Total Energy"]).all()
    assert 100 < result["temperature_K"][0] and result["temperature_K"][1] < 600
    final = _final_frame(files)
    oh = [final.get_distance(o, o + k, mic=True) for o in range(0, len(final), 3) for k in (1, 2)]
    assert max(oh) < 1.3, "a water dissociated"
    assert abs(drift) < MAX_DRIFT_MEV_PER_ATOM_PS, f"NVE drift {drift:+.3f} meV/atom/ps"


@pytest.fixture(scope="module")
def ethanol_in_water(reference_data):
    mol = read(reference_data / "rmd17_ethanol" / "test_MD.xyz", index=0)
    water = order_waters(read(reference_data / "water_deepmd" / "water.extxyz", index=0)).repeat((2, 2, 2))
    molecule, counts = ethanol_moleculetype(mol)
    return Solute(RESIDUE, mol, ethanol_atomtypes(), molecule), water, counts


def test_grompp_removes_the_mm_terms_inside_the_nn_group(gmx, ethanol_in_water, tmp_path):
    """Issue 4, test 3 (topology): what grompp reports and what the run input still holds for ethanol."""
    solute, water, counts = ethanol_in_water
    artifact = tmp_path / "ethanol.pt"
    compile_nnpot_from_artifact(MODELS / "rmd17_ethanol_fast.pt", artifact)
    mlmm = prepare_solvated(tmp_path / "mlmm", water, solute, artifact)
    mm = prepare_solvated(tmp_path / "mm", water, solute)
    report = grompp(gmx, mlmm)
    done = embedding_report(report.stdout + report.stderr)
    n_nn = len(solute.atoms)
    assert done["embedded NNP atoms"] == n_nn and done["regular atoms"] == mlmm.n_atoms - n_nn
    assert done["exclusions made"] == n_nn                        # NN-NN LJ and Coulomb excluded
    assert done["bonds removed"] == counts["bonds"] + counts["pairs"]   # LJ-14 pairs are 2-atom bonded terms
    assert done["ConnectBonds added"] == counts["bonds"]
    assert done["angles removed"] == counts["angles"] and done["dihedrals removed"] == counts["dihedrals"]
    grompp(gmx, mm)
    assert molecule_interactions(gmx, mm.tpr, RESIDUE) == {
        "Bond": counts["bonds"], "LJ-14": counts["pairs"], "Angle": counts["angles"],
        "Ryckaert-Bell.": counts["dihedrals"]}
    assert molecule_interactions(gmx, mlmm.tpr, RESIDUE) == {"Connect Bonds": counts["bonds"]}


@pytest.mark.slow
def test_mlmm_ethanol_in_spce_water_is_stable_for_10_ps(gmx, ethanol_in_water, tmp_path, request):
    """Issue 4, test 3 (dynamics): NN ethanol in ~500 SPC/E waters, mechanical embedding, 10 ps NVT."""
    solute, water, _ = ethanol_in_water
    artifact = tmp_path / "ethanol.pt"
    compile_nnpot_from_artifact(MODELS / "rmd17_ethanol_fast.pt", artifact)
    files = prepare_solvated(tmp_path / "mlmm", water, solute, artifact, TEN_PS)
    grompp(gmx, files)
    mdrun(gmx, files, timeout=3600)
    energies = read_energies(files.directory / "md.edr")
    drift = drift_per_atom_ps(energies, files.n_atoms)
    result = {"ps": float(energies["Time"][-1]), "atoms": files.n_atoms, "nn_atoms": len(solute.atoms),
              "drift_meV_per_atom_ps": drift, "temperature_K_mean": float(energies["Temperature"][50:].mean()),
              "nn_potential_kJ_mol": [float(energies["NN Potential"].min()), float(energies["NN Potential"].max())]}
    _record(request, tmp_path, "nvt_mlmm_ethanol_in_water", result)
    assert result["ps"] == pytest.approx(10.0)
    assert not {"Bond", "Angle", "Ryckaert-Bell.", "LJ-14", "Coulomb-14"} & set(energies), \
        "MM bonded terms of the NN ethanol are still computed"
    assert 280 < result["temperature_K_mean"] < 320
    final = _final_frame(files)
    for a, b in type_atoms(solute.atoms)[1]:   # the NN keeps ethanol whole: every bond within 0.25 Å of its start
        assert abs(final.get_distance(a, b, mic=True) - solute.atoms.get_distance(a, b)) < 0.25, (a, b)
    assert abs(drift) < MAX_DRIFT_MEV_PER_ATOM_PS, f"drift {drift:+.3f} meV/atom/ps"


# LAMMPS `units real`: 332.06371 kcal/mol Å/e^2 = 138.9354 kJ/mol nm/e^2 (GROMACS ONE_4PI_EPS0 138.935458)
COULOMB_KJ_NM = 332.06371 * 4.184 / 10.0
MLMM_CUTOFF_NM = 1.0


def _reaction_field_constant(atoms, cutoff_nm: float) -> float:
    """What GROMACS's Verlet cut-off Coulomb (reaction field, epsilon-rf 1: k_rf = 0, c_rf = 1/r_c) adds
    to plain cut-off Coulomb, in kJ/mol: -q_i q_j c_rf for every pair within r_c, excluded or not
    (for an excluded pair that is its whole RF term), and -q_i^2 c_rf / 2 for every atom. No forces."""
    from ase.neighborlist import neighbor_list

    i, j = neighbor_list("ij", atoms, 10.0 * cutoff_nm)
    q = atoms.get_initial_charges()
    pairs = 0.5 * np.sum(q[i] * q[j])    # each pair listed twice
    return -COULOMB_KJ_NM / cutoff_nm * (pairs + 0.5 * np.sum(q * q))


@pytest.mark.slow
def test_lammps_hybridff_and_gromacs_nnpot_agree_on_mlmm_ethanol(gmx, ethanol_in_water, tmp_path):
    """Issue 19: the same ML/MM system, model and MM parameters in both engines (cut-off Coulomb,
    potential-shifted LJ, 1 nm; SPC/E water rigid in GROMACS, its MM bonds zeroed in LAMMPS), one frame:
    GROMACS mdrun -rerun against LAMMPS pair_style hybridff `run 0`. Energies differ by GROMACS's
    reaction-field constant (computed here), forces by nothing."""
    from ffkit.solvation import solvate
    from ffkit_lammps_adapter.mlmm import SPECIAL_BONDS, elements, ml_types, pair_coeff_lines, type_names, \
        type_table, write_mlmm_data
    from lammps_harness import read_dump, run_lmp, thermo_rows

    solute, water, _ = ethanol_in_water
    system, _ = solvate(solute.atoms, water)
    system.positions = np.asarray(system.positions / 10.0, dtype=np.float32).astype(np.float64) * 10.0
    system.set_initial_charges([type_table()[name][2] for name in type_names(system, solute.atoms)])
    artifact = MODELS / "rmd17_ethanol_fast.pt"
    nnpot = tmp_path / "ethanol_nnpot.pt"
    compile_nnpot_from_artifact(artifact, nnpot)
    # plain cut-off Coulomb is, in the Verlet scheme, reaction-field with epsilon-rf = 1 (asking for that
    # explicitly is a grompp warning)
    settings = {**RERUN, "coulombtype": "Cut-off", "rcoulomb": str(MLMM_CUTOFF_NM),
                "rvdw": str(MLMM_CUTOFF_NM), "vdw-modifier": "Potential-shift", "DispCorr": "no", "tcoupl": "no"}
    files = prepare_solvated(tmp_path / "gmx", water, solute, nnpot, settings)
    grompp(gmx, files)
    frame = write_trr(tmp_path / "frame.trr", [system])
    mdrun(gmx, files, deffnm="rerun", rerun=frame)
    gmx_energy = read_energies(files.directory / "rerun.edr")["Potential"][0]
    gmx_forces = read_forces(files.directory / "rerun.trr")[0]

    work = tmp_path / "lammps"
    work.mkdir()
    write_mlmm_data(work / "system.data", system, solute.atoms)
    (work / "pairs.lmp").write_text(pair_coeff_lines("lj/cut/coul/cut"))
    out = run_lmp(work, f"""units real
atom_style full
bond_style harmonic
angle_style harmonic
dihedral_style multi/harmonic
read_data system.data
{SPECIAL_BONDS}
bond_coeff 5 0.0 1.0
angle_coeff 6 0.0 109.47
pair_style hybridff ffkit lj/cut/coul/cut {10.0 * MLMM_CUTOFF_NM}
pair_coeff * * ffkit {artifact} {' '.join(elements())}
include pairs.lmp
pair_modify pair lj/cut/coul/cut shift yes
group ml type {ml_types()}
delete_bonds ml multi remove special
thermo_style custom step pe
thermo_modify format float %.16g
dump d all custom 1 dump.forces id fx fy fz
dump_modify d sort id format float %.17g
run 0
""")
    lammps_energy = thermo_rows(out)[-1]["PotEng"] * 4.184 + _reaction_field_constant(system, MLMM_CUTOFF_NM)
    lammps_forces = read_dump(work / "dump.forces")[0][:, 1:4] * 41.84
    assert lammps_energy == pytest.approx(gmx_energy, rel=1e-5)
    np.testing.assert_allclose(lammps_forces, gmx_forces, atol=1e-4 * np.abs(gmx_forces).max(), rtol=0)
