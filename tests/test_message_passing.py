"""The message-passing terms (invariant states, equivariant tensors): symmetric, two cutoffs deep, and
exact through the ghost-atom convention."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read

from ffkit.artifact import compile_model, read_metadata
from ffkit.calculator import FFKitCalculator
from ffkit.model.tiers import build_model, resolve_terms
from ffkit.graphs import collate, frame_graph
from model_helpers import atoms_frame, energy_forces

SMALL = {"type": "message_passing", "cutoff": 3.0, "n_basis": 6, "n_channels": 4, "l_max": 2, "n_coupled": 2,
         "hidden": [8], "state_channels": 4, "state_hidden": [8], "message_l_max": 2}
SMALL_TENSORS = {"type": "tensor_messages", "cutoff": 3.0, "n_basis": 6, "channels": 4, "interactions": 1,
                 "hidden": [8]}


def small_model(many_body):
    torch.manual_seed(3)
    terms = {**resolve_terms("accurate"), "many_body": many_body}
    terms["pair"] = {**terms["pair"], "cutoff": 3.0}
    m = build_model(None, [1, 8], [0.0, 0.0], terms=terms, avg_neighbors=10.0).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


@pytest.fixture(scope="module", params=[SMALL, SMALL_TENSORS], ids=["states", "tensors"])
def model(request):
    return small_model(request.param)


def test_energy_is_invariant_and_forces_are_its_gradient(model):
    rng = np.random.default_rng(0)
    atoms = Atoms("OH2OH2", positions=rng.uniform(0, 3.5, (6, 3)))
    e, f = energy_forces(model, atoms)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    for turn in (rotation, rotation * [-1, 1, 1]):  # a rotation, and one with a reflection: O(3)
        moved = atoms.copy()
        moved.positions = atoms.positions @ turn.T + 4.0
        e2, f2 = energy_forces(model, moved)
        assert e2 == pytest.approx(e, abs=1e-12) and np.allclose(f2, f @ turn.T, atol=1e-12)
    h = 1e-5
    for atom, axis in ((0, 0), (4, 2)):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(energy_forces(model, plus)[0] - energy_forces(model, minus)[0]) / (2 * h)
        assert f[atom, axis] == pytest.approx(numeric, abs=1e-7)


def test_an_atom_reaches_two_cutoffs_and_no_farther(model):
    # a chain O ... H ... H with 2.5 Å steps (cutoff 3 Å): the first O feels the last H through the middle one
    def forces_on_first(last_x):
        chain = Atoms("OHH", positions=[[0, 0, 0], [2.5, 0, 0], [last_x, 0.3, 0]])
        return energy_forces(model, chain)[1][0]
    assert not np.allclose(forces_on_first(5.0), forces_on_first(5.2))     # within 2 r_c of atom 0
    far = Atoms("OHH", positions=[[0, 0, 0], [2.5, 0, 0], [9.0, 0.3, 0]])
    farther = Atoms("OHH", positions=[[0, 0, 0], [2.5, 0, 0], [9.5, 0.3, 0]])
    assert np.allclose(energy_forces(model, far)[1][0], energy_forces(model, farther)[1][0], atol=1e-14)


def test_tensors_without_interaction_are_strictly_local():
    # O, H at 2.5 Å, H at 4 Å (cutoff 3 Å): the first O's own energy sees the last H only through messages
    local = small_model({**SMALL_TENSORS, "interactions": 0})
    assert local.layers == 1

    def energy_of_first(model, last_x):
        chain = Atoms("OHH", positions=[[0, 0, 0], [2.5, 0, 0], [last_x, 0.3, 0]])
        graph = collate([frame_graph(atoms_frame(chain), model.species, model.cutoff)]).to(torch.float64)
        vectors = graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]] + graph.shifts
        return float(model(graph.species, graph.edge_index, vectors, 3)[0])
    assert energy_of_first(local, 4.0) == energy_of_first(local, 4.2)
    reaching = small_model(SMALL_TENSORS)
    assert energy_of_first(reaching, 4.0) != energy_of_first(reaching, 4.2)  # small weights: a small change


@pytest.mark.parametrize("many_body", [SMALL, SMALL_TENSORS], ids=["states", "tensors"])
def test_message_passing_trains(many_body, tmp_path):
    from ffkit import bundled
    from ffkit.config import TrainConfig
    from ffkit.training import train

    cfg = TrainConfig(data=str(bundled.path("ethanol_train.xyz")), out=str(tmp_path / "run"), tier="accurate",
                      terms={"many_body": None, "ml": many_body}, max_frames=20, n_valid=4, epochs=2, batch_size=4,
                      dtype="float64", progress=False)
    summary = train(cfg)
    assert summary["epochs"] == 2 and np.isfinite(summary["best_valid_f_mae_meV_A"])


@pytest.mark.slow
def test_lammps_runs_it_exactly_in_serial_and_on_two_ranks(model, reference_data, tmp_path):
    # the plugin gives ghosts within a cutoff of a local atom their own neighbours, two cutoffs of
    # ghosts in all: energies, forces and virial of the Python model, and mpirun -np 2 equals serial
    from lammps_harness import lammps_single_point

    water = read(reference_data / "water_deepmd" / "water.extxyz", index=4)
    e, f = energy_forces(model, water)
    compile_model(model, tmp_path / "mp.pt", dtype="float64", tabulate=False)  # no spline: exact
    assert read_metadata(tmp_path / "mp.pt")["layers"] == 2
    pair = f"pair_style ffkit\npair_coeff * * {tmp_path / 'mp.pt'} O H"
    serial = lammps_single_point(tmp_path / "serial", water, ("O", "H"), pair)
    two = lammps_single_point(tmp_path / "two", water, ("O", "H"), pair, nprocs=2)
    scale = np.abs(f).max()
    assert serial["energy"] == pytest.approx(e, rel=1e-12)
    assert np.abs(serial["forces"] - f).max() < 1e-10 * scale
    assert two["energy"] == pytest.approx(serial["energy"], rel=1e-12)
    assert np.abs(two["forces"] - serial["forces"]).max() < 1e-10 * scale
    assert np.abs(two["virial"] - serial["virial"]).max() < 1e-10 * np.abs(serial["virial"]).max()
    water.calc = FFKitCalculator(tmp_path / "mp.pt")
    stress = water.get_stress(voigt=True)
    xx, yy, zz, yz, xz, xy = -stress * water.get_volume()
    assert np.abs(serial["virial"] - [xx, yy, zz, xy, xz, yz]).max() < 1e-8 * np.abs(serial["virial"]).max()



def test_gromacs_nnpot_convention_runs_it_as_the_periodic_model(model, reference_data, tmp_path):
    # GROMACS hands over all atoms of the box (float32 nm, wrapped): the artifact's own periodic
    # pair list makes every atom a centre, so messages need no ghosts there
    from ffkit.units import KJ_PER_MOL_PER_EV
    from ffkit_gromacs.nnpot import compile_nnpot

    water = read(reference_data / "water_deepmd" / "water.extxyz", index=4)
    positions_nm = np.asarray(water.positions / 10.0, dtype=np.float32)
    box_nm = np.asarray(np.asarray(water.cell) / 10.0, dtype=np.float32)
    water.positions, water.cell = positions_nm.astype(np.float64) * 10.0, box_nm.astype(np.float64) * 10.0
    e, f = energy_forces(model, water)
    compile_nnpot(model, tmp_path / "mp_nnpot.pt", layout="positions", precision="float64")
    module = torch.jit.load(str(tmp_path / "mp_nnpot.pt"))
    energy, forces = module(torch.tensor(positions_nm).requires_grad_(True), torch.tensor(water.numbers, dtype=torch.int32),
                            torch.tensor(box_nm), torch.tensor([True, True, True]))
    assert float(energy) == pytest.approx(e * KJ_PER_MOL_PER_EV, rel=1e-9)
    forces_ev = np.asarray(forces, dtype=np.float64) / (KJ_PER_MOL_PER_EV * 10.0)
    assert np.abs(forces_ev - f).max() < 1e-7 * np.abs(f).max()  # returned as float32, as GROMACS reads them
