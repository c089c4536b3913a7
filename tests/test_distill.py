"""`ffkit distill`: the teacher's own MD in the real lmp and its labels, the student's data, provenance,
resume and refusals (small budgets; the measured gain lives in benchmarks/distill.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ffkit import bundled
from ffkit.artifact import read_metadata
from ffkit.calculator import FFKitCalculator
from ffkit.cli import main as ffkit_main
from ffkit.datasets import read_frames
from lammps_harness import error_line, run_lmp, single_point_script, write_data

MODELS = Path(__file__).resolve().parents[1] / "benchmarks" / "models"
QM = str(bundled.path("ethanol_train.xyz"))
SMALL = ["--data", QM, "--frames", "24", "--starts", "2", "--temperatures", "300", "900", "--every", "10",
         "--rattled", "6", "--epochs", "1", "--n-valid", "10", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill") / "run"
    assert ffkit_main(["distill", str(MODELS / "rmd17_ethanol_fast.pt"), "--out", str(out), *SMALL]) == 0
    return out


@pytest.mark.slow
def test_student_trains_on_qm_and_teacher_frames_and_records_where_they_came_from(run):
    counts = json.loads((run / "data" / "counts.json").read_text())
    n_qm = len(read_frames(QM))
    assert counts == {"qm_train": n_qm - 10, "qm_valid": 10, "qm_weight": 3, "teacher_md": 24,
                      "teacher_perturbed": 6, "dropped_by_spread": 0, "training_frames": 3 * (n_qm - 10) + 30}
    assert len(read_frames(run / "data" / "train.xyz")) == counts["training_frames"]
    assert len(read_frames(run / "data" / "valid.xyz")) == 10
    meta = read_metadata(run / "student.pt")
    assert meta["tier"] == "fast" and meta["engine_parity"]["passed"]
    provenance = meta["provenance"]
    assert provenance["kind"] == "ffkit distill" and provenance["frames"] == counts
    assert provenance["teacher_tier"] == "fast" and provenance["temperatures"] == [300.0, 900.0]
    assert len(provenance["teacher_sha256"]) == 64


@pytest.mark.slow
def test_teacher_md_frames_carry_the_teachers_own_energy_and_forces(run):
    # LAMMPS computed the labels during the MD; the teacher run from Python must give the same
    samples = np.load(run / "md" / "T900_1" / "samples.npz")
    frames = read_frames(run / "data" / "train.xyz")
    calc = FFKitCalculator(MODELS / "rmd17_ethanol_fast.pt")
    k = len(frames) - 6 - 1  # the last teacher MD frame (the 6 perturbed frames follow)
    atoms = frames[k].to_atoms()
    atoms.calc = calc
    np.testing.assert_allclose(frames[k].positions, samples["positions"][-1], atol=1e-6)
    forces = samples["forces"][-1]
    assert np.abs(atoms.get_forces() - forces).max() < 1e-4 * np.abs(forces).max()  # float32 teacher
    assert atoms.get_potential_energy() == pytest.approx(samples["energies"][-1], abs=1e-3)
    # 900 K MD moved away from the starting QM frame
    assert np.abs(samples["positions"][-1] - samples["positions"][0]).max() > 0.05


@pytest.mark.slow
def test_resume_reuses_the_samples_and_other_settings_are_refused(run, capsys):
    stamp = (run / "md" / "T300_0" / "samples.npz").stat().st_mtime_ns
    teacher = str(MODELS / "rmd17_ethanol_fast.pt")
    assert ffkit_main(["distill", teacher, "--out", str(run), *SMALL]) == 2
    assert "--resume" in capsys.readouterr().err
    assert ffkit_main(["distill", teacher, "--out", str(run), *SMALL, "--resume"]) == 0
    assert (run / "md" / "T300_0" / "samples.npz").stat().st_mtime_ns == stamp
    assert ffkit_main(["distill", teacher, "--out", str(run), *SMALL, "--resume", "--qm-weight", "2"]) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_another_seed_draws_other_velocities_and_validation_frames(run, tmp_path):
    out = tmp_path / "seed1"
    assert ffkit_main(["distill", str(MODELS / "rmd17_ethanol_fast.pt"), "--out", str(out), *SMALL, "--seed", "1"]) == 0
    velocity = [next(line for line in (r / "md" / "T300_0" / "in.lmp").read_text().splitlines()
                     if line.startswith("velocity")) for r in (run, out)]
    assert velocity[0] != velocity[1]
    valid = [read_frames(r / "data" / "valid.xyz") for r in (run, out)]
    assert not np.allclose(valid[0][0].positions, valid[1][0].positions)


@pytest.mark.slow
def test_a_committee_teachers_spread_drops_frames(tmp_path):
    committee = tmp_path / "committee.pt"
    assert ffkit_main(["compile", str(MODELS / "rmd17_ethanol_fast.pt"), str(MODELS / "rmd17_ethanol_balanced.pt"),
                       "--out", str(committee), "--dtype", "float32", "--frame", QM]) == 0
    out = tmp_path / "run"
    assert ffkit_main(["distill", str(committee), "--out", str(out), *SMALL, "--max-spread", "0"]) == 0
    counts = json.loads((out / "data" / "counts.json").read_text())
    assert counts["dropped_by_spread"] == 30 and counts["training_frames"] == 3 * counts["qm_train"]
    spreads = np.load(out / "md" / "T300_0" / "samples.npz")["spread"]
    assert len(spreads) == 6 and (spreads > 0).all()


@pytest.mark.slow
def test_a_teacher_lammps_cannot_run_labels_the_md_of_a_sampler(tmp_path, capsys):
    """A committee with a message-passing member (pair_style ffkit refuses it) teaches from Python: the frames
    come from the sampler's MD in lmp, the labels (and spread) from the teacher."""
    teacher = tmp_path / "teacher.pt"
    assert ffkit_main(["compile", str(MODELS / "rmd17_ethanol_fast.pt"),
                       str(MODELS / "rmd17_ethanol_equivariant.pt"), "--out", str(teacher), "--dtype",
                       "float32"]) == 0
    assert not read_metadata(teacher)["engine_parity"]["checked"]
    assert "kernel" not in read_metadata(teacher)["paths"]  # both members have kernels; the committee cannot run one
    ethanol = read_frames(QM, index=0)[0].to_atoms()
    ethanol.set_cell([20.0, 20.0, 20.0])
    ethanol.center()
    write_data(tmp_path / "e.data", ethanol, ["C", "H", "O"])
    out = run_lmp(tmp_path, single_point_script("e.data", f"pair_style ffkit\npair_coeff * * {teacher} C H O"),
                  expect_ok=False)
    assert re.search("is a committee of message-passing models, which this pair style does not run: run one "
                     "member here, and the committee from Python", error_line(out)), error_line(out)
    assert ffkit_main(["distill", str(teacher), "--out", str(tmp_path / "no"), *SMALL]) == 2
    assert "give --sampler" in capsys.readouterr().err
    water = str(MODELS / "water_deepmd_fast.pt")
    assert ffkit_main(["distill", str(teacher), "--sampler", water, "--out", str(tmp_path / "w"), *SMALL]) == 2
    assert "without C (metadata 'species_symbols')" in capsys.readouterr().err
    sampler = MODELS / "rmd17_ethanol_fast.pt"
    out = tmp_path / "run"
    assert ffkit_main(["distill", str(teacher), "--sampler", str(sampler), "--out", str(out), *SMALL]) == 0
    samples = np.load(out / "md" / "T900_1" / "samples.npz")
    atoms = read_frames(QM, index=0)[0].to_atoms()
    atoms.positions = samples["positions"][-1]
    labels = {}
    for name, path in (("sampler", sampler), ("teacher", teacher)):
        atoms.calc = FFKitCalculator(path)
        labels[name] = atoms.get_forces()
    np.testing.assert_allclose(samples["forces"][-1], labels["teacher"], atol=1e-6)
    assert np.abs(labels["teacher"] - labels["sampler"]).max() > 1e-2
    # float32 members: the spread, a difference of forces, agrees as the forces do (1e-6 eV/Å), not to 1e-6 relative
    assert samples["spread"][-1] == pytest.approx(atoms.calc.results["max_force_std"], abs=1e-6)
    assert samples["spread"][-1] > 0
    assert read_metadata(out / "student.pt")["provenance"]["sampler"] == str(sampler.resolve())


def test_bad_plans_are_refused(tmp_path, capsys):
    teacher = str(MODELS / "rmd17_ethanol_fast.pt")
    assert ffkit_main(["distill", teacher, "--data", QM, "--out", str(tmp_path / "a"), "--temperatures", "0"]) == 2
    assert "temperatures must be positive" in capsys.readouterr().err
    water = str(MODELS / "water_deepmd_fast.pt")
    assert ffkit_main(["distill", water, "--data", QM, "--out", str(tmp_path / "b")]) == 2
    assert "are not in the teacher" in capsys.readouterr().err
