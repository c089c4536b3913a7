"""The ASE calculator on compiled artifacts: agrees with the model, stress = strain derivative."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read

from ffkit.artifact import compile_model
from ffkit.calculator import FFKitCalculator
from ffkit.errors import DataError
from ffkit.graphs import collate, frame_graph
from ffkit.datasets import Frame
from ffkit.model.tiers import build_model
from ffkit.predict import energy_and_forces


@pytest.fixture(scope="module")
def water(reference_data):
    return read(reference_data / "water_deepmd" / "water.extxyz", index=3)


@pytest.fixture(scope="module", params=["balanced", "accurate", "equivariant"])
def model_and_artifact(request, tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(request.param, [1, 8], avg_neighbors=20.0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("art") / "model.pt"
    compile_model(model, path, dtype="float64", tabulate=False)  # exact: this tests the calculator
    return model, path


def test_calculator_matches_model_on_periodic_water(model_and_artifact, water):
    model, path = model_and_artifact
    frame = Frame(numbers=water.numbers.astype(np.int64), positions=water.positions, cell=np.asarray(water.cell),
                  pbc=np.asarray(water.pbc), energy=None, forces=None, source="water")
    graph = collate([frame_graph(frame, model.species, model.cutoff)])
    e_ref, f_ref = energy_and_forces(model, graph)
    atoms = water.copy()
    atoms.calc = FFKitCalculator(path)
    assert atoms.get_potential_energy() == pytest.approx(float(e_ref), rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), f_ref.detach().numpy(), atol=1e-10)
    assert atoms.get_potential_energies().sum() == pytest.approx(float(e_ref), rel=1e-12)


def test_stress_is_the_strain_derivative(model_and_artifact, water):
    _, path = model_and_artifact
    atoms = water.copy()
    atoms.calc = FFKitCalculator(path)
    atoms.get_potential_energy()  # stress after energy: the calculator recomputes with the virial
    stress = atoms.get_stress(voigt=False)
    h = 1e-5
    volume = atoms.get_volume()
    for a, b in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2)]:
        energies = []
        for sign in (1, -1):
            delta = np.zeros((3, 3))
            delta[a, b] += 0.5
            delta[b, a] += 0.5
            strain = np.eye(3) + sign * h * delta
            strained = atoms.copy()
            strained.set_cell(atoms.cell @ strain, scale_atoms=True)
            strained.calc = atoms.calc
            energies.append(strained.get_potential_energy())
        numeric = (energies[0] - energies[1]) / (2 * h) / volume
        assert stress[a, b] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_unknown_element_is_refused(model_and_artifact):
    _, path = model_and_artifact
    atoms = Atoms("CH4", positions=np.random.default_rng(0).normal(size=(5, 3)) * 2)
    atoms.calc = FFKitCalculator(path)
    with pytest.raises(DataError, match="element.*C.*not in the model.*knows H, O"):
        atoms.get_potential_energy()


def test_library_calls_leave_global_state_alone(tmp_path):
    """Threads, gradient mode and the matplotlib backend are the caller's."""
    import subprocess
    import sys

    code = """
import matplotlib
matplotlib.use("svg")
import torch
torch.set_num_threads(2)
from ase.build import molecule
from ffkit import bundled
from ffkit.artifact import compile_model
from ffkit.calculator import FFKitCalculator
from ffkit.config import TrainConfig
from ffkit.datasets import read_frames
from ffkit.evaluation import evaluate_model
from ffkit.model.tiers import build_model
import ffkit.pareto, ffkit.plots, ffkit.validate.report
compile_model(build_model("mm", [1, 6, 8]), "m.pt")
atoms = molecule("CH3CH2OH")
atoms.calc = FFKitCalculator("m.pt", threads=1)
atoms.get_forces()
with torch.no_grad():
    evaluate_model("m.pt", read_frames(bundled.path("ethanol_test.xyz"))[:2])
    assert not torch.is_grad_enabled()
from ffkit.training import train
train(TrainConfig(data=str(bundled.path("ethanol_train.xyz")), out="run", tier="mm", max_frames=10, n_valid=2,
                  epochs=1, threads=1, progress=False))
assert torch.get_num_threads() == 2, torch.get_num_threads()
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def test_overlapping_and_empty_structures_are_refused(tmp_path):
    from ffkit.model.tiers import build_model

    compile_model(build_model("fast", [1, 8]), tmp_path / "m.pt")
    calc = FFKitCalculator(tmp_path / "m.pt")
    same = Atoms("OHH", positions=[[0, 0, 0], [0.9, 0.3, 0], [0.9, 0.3, 0]], calculator=calc)
    with pytest.raises(DataError, match=r"atoms 1 and 2 are 0\.0000 Å apart .*overlapping atoms"):
        same.get_potential_energy()
    with pytest.raises(DataError, match="has no atoms"):
        Atoms(calculator=calc).get_potential_energy()
