"""Real `gmx grompp` + `gmx mdrun` with ffkit NNPot artifacts (issue 4, tests 1, 4 and 5).

Run when a GROMACS with NNPot is found (`FFKIT_GMX=/path/to/gmx`, or a build from
`ffkit deploy gromacs`); skipped otherwise, with the reason shown by `pytest -rs`.
"""

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
from ffkit_gromacs.engine import find_gmx, gmx_version, has_nnpot
from ffkit_gromacs.nnpot import compile_nnpot
from ffkit_gromacs.runs import grompp, mdrun, prepare_pure_nn, read_energies, read_forces
from ffkit_gromacs.topology import write_trr

pytestmark = pytest.mark.gromacs

RERUN = {"nsteps": "0", "nstcalcenergy": "1", "nstenergy": "1", "nstfout": "1", "gen-vel": "no"}


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


def _float32_frames(shared_data, count=4):
    """Water frames with positions and box rounded to float32 nm, exactly what GROMACS holds."""
    frames = read(shared_data / "water_deepmd" / "water.extxyz", index=f"0:{40 * count}:40")
    for atoms in frames:
        atoms.positions = np.asarray(atoms.positions / 10.0, dtype=np.float32).astype(np.float64) * 10.0
        atoms.cell = np.asarray(np.asarray(atoms.cell) / 10.0, dtype=np.float32).astype(np.float64) * 10.0
    return frames


@pytest.mark.parametrize("layout", ["positions", "pairs"])
def test_rerun_of_water_frames_matches_the_ase_calculator(gmx, version, model, ase_artifact, shared_data,
                                                          tmp_path, layout):
    if layout == "pairs" and version < 2026:
        pytest.skip(f"the pair layout needs GROMACS 2026, this is {version}")
    frames = _float32_frames(shared_data)
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
