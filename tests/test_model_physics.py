"""Symmetries and locality of every tier: properties any correct local force field must have."""

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.io import read
from model_helpers import atoms_frame, energy_forces, perturbed_model

from ffkit.graphs import collate, frame_graph
from ffkit.model.tiers import TIERS

SPECIES = [1, 6, 8]


def _model(tier, species=SPECIES):
    return perturbed_model(tier, species)


@pytest.fixture(scope="module")
def ethanol(reference_data):
    return read(reference_data / "rmd17_ethanol" / "train.xyz", index=0)


@pytest.mark.parametrize("tier", list(TIERS))
def test_rotation_translation_permutation_invariance(tier, ethanol):
    model = _model(tier)
    e0, f0 = energy_forces(model, ethanol)
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64))[0].numpy()
    moved = ethanol.copy()
    moved.positions = ethanol.positions @ rot.T + np.array([1.3, -2.1, 0.7])
    e1, f1 = energy_forces(model, moved)
    assert e1 == pytest.approx(e0, rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(f1, f0 @ rot.T, atol=1e-10)
    perm = np.random.default_rng(0).permutation(len(ethanol))
    e2, f2 = energy_forces(model, ethanol[perm])
    assert e2 == pytest.approx(e0, rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(f2, f0[perm], atol=1e-10)


@pytest.mark.parametrize("tier", list(TIERS))
def test_forces_are_minus_gradient(tier, ethanol):
    model = _model(tier)
    _, forces = energy_forces(model, ethanol)
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (8, 2)]:
        plus, minus = ethanol.copy(), ethanol.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(energy_forces(model, plus)[0] - energy_forces(model, minus)[0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numeric, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("tier", list(TIERS))
def test_locality_beyond_cutoff(tier, reference_data):
    """In liquid water, nudging an atom farther than r_c from atom 0 leaves atom 0's energy unchanged."""
    water = read(reference_data / "water_deepmd" / "water.extxyz", index=0)
    model = _model(tier, species=[1, 8])

    def atom_energies(atoms):
        graph = collate([frame_graph(atoms_frame(atoms), model.species, model.cutoff)]).to(torch.float64)
        vec = graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]] + graph.shifts
        return model(graph.species, graph.edge_index, vec, graph.n_atoms).detach().numpy()

    distances = water.get_distances(0, list(range(len(water))), mic=True)
    far = int(np.argmax(distances))
    assert distances[far] > model.cutoff + 0.5
    before = atom_energies(water)
    nudged = water.copy()
    nudged.positions[far] += np.array([0.2, -0.1, 0.15])
    after = atom_energies(nudged)
    assert after[0] == before[0]
    neighbours = np.flatnonzero(water.get_distances(far, list(range(len(water))), mic=True) < 3.0)
    assert np.any(after[neighbours] != before[neighbours])  # the nudge is felt where it should be


@pytest.mark.parametrize("tier", list(TIERS))
def test_extensivity(tier, ethanol):
    model = _model(tier)
    e1, _ = energy_forces(model, ethanol)
    pair = ethanol.copy() + ethanol.copy()
    pair.positions[len(ethanol):] += np.array([40.0, 0.0, 0.0])
    e2, _ = energy_forces(model, pair)
    assert e2 == pytest.approx(2 * e1, rel=1e-12)


@pytest.mark.parametrize("tier", list(TIERS))
def test_periodic_supercell(tier):
    """A small periodic cell (cutoff > half the box) and its 2x2x2 supercell: 8x the energy."""
    atoms = bulk("C", "diamond", a=3.57)
    atoms.rattle(0.05, seed=2)
    model = _model(tier)
    e1, f1 = energy_forces(model, atoms)
    e8, f8 = energy_forces(model, atoms.repeat((2, 2, 2)))
    assert e8 == pytest.approx(8 * e1, rel=1e-10)
    np.testing.assert_allclose(f8[: len(atoms)], f1, atol=1e-9)


@pytest.mark.parametrize("tier", list(TIERS))
def test_axis_aligned_atoms_give_finite_forces(tier):
    """Bond vectors with exact zero components (a linear O=C=O along x) must not produce NaN."""
    from ase import Atoms
    model = _model(tier)
    co2 = Atoms("OCO", positions=[[0.0, 0.0, 0.0], [1.16, 0.0, 0.0], [2.32, 0.0, 0.0]])
    energy, forces = energy_forces(model, co2)
    assert np.isfinite(energy) and np.all(np.isfinite(forces))
    np.testing.assert_allclose(forces[:, 1:], 0.0, atol=1e-12)


def test_shared_readout_tells_elements_apart():
    """One network for all elements must still give an H and an O with the same features different energies."""
    from ffkit.model.readout import ElementNetworks

    torch.manual_seed(0)
    shared = ElementNetworks(3, 5, [8], shared=True)
    per_element = ElementNetworks(3, 5, [8])
    assert sum(p.numel() for p in shared.parameters()) < sum(p.numel() for p in per_element.parameters()) / 2
    features = torch.randn(1, 5).expand(3, 5)
    energies = torch.jit.script(shared)(features, torch.tensor([0, 1, 2]))
    assert len(set(energies.tolist())) == 3


def test_radial_per_rank_gives_each_rank_its_own_radial_functions():
    """With `radial_per_rank`, rank-l moments are sums of R_kl(r) times monomials: zeroing rank 1's
    radial mix zeroes exactly the rank-1 moments, and rank 0 is what one shared mix gives."""
    from ffkit.model.moments import CartesianMoments, monomials

    torch.manual_seed(0)
    per_rank = CartesianMoments(1, 5.0, 4, 2, l_max=2, radial_per_rank=True).double()
    shared = CartesianMoments(1, 5.0, 4, 2, l_max=2).double()
    with torch.no_grad():
        mixes = per_rank.radial_weights.view(4, 3, 2)  # (basis, rank, channel)
        mixes[:, 1] = 0.0
        shared.radial_weights.copy_(mixes[:, 0])
    vectors = torch.tensor([[1.1, 0.2, -0.3], [-0.4, 1.5, 0.6], [0.3, -0.7, -1.9]], dtype=torch.float64)
    args = (torch.zeros(4, dtype=torch.int64), torch.tensor([[0, 0, 0], [1, 2, 3]]), vectors,
            torch.linalg.vector_norm(vectors, dim=-1), 4)
    moments, reference = per_rank(*args), shared(*args)
    _, _, ranks = monomials(2)
    assert torch.all(moments[:, :, ranks == 1] == 0.0)
    assert torch.all(moments[0][:, ranks == 2].abs() > 0.0)
    torch.testing.assert_close(moments[:, :, ranks == 0], reference[:, :, ranks == 0])
    assert not torch.allclose(moments[:, :, ranks == 2], reference[:, :, ranks == 2])
