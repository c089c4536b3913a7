"""Neighbour lists against a brute-force sum over periodic images, and the ghost-atom form."""

import itertools

import numpy as np
import pytest

from ffkit.datasets import read_frames
from ffkit.errors import DataError
from ffkit.neighbors import edges, ghost_layout


def brute_force(positions, cell, pbc, cutoff):
    """{(i, j, image): vector} for every directed pair closer than cutoff, images searched widely."""
    cell = np.asarray(cell, dtype=float)
    spanning = np.where(np.asarray(pbc)[:, None], cell, np.eye(3))  # stand-ins for absent vectors
    spread = np.ptp(positions @ np.linalg.inv(spanning), axis=0)
    reach = []
    for k in range(3):
        if pbc[k]:
            # |image_k| < cutoff / (distance between lattice planes) + spread of fractional coordinates
            normal = np.cross(spanning[(k + 1) % 3], spanning[(k + 2) % 3])
            width = abs(spanning[k] @ normal) / np.linalg.norm(normal)
            reach.append(int(np.floor(cutoff / width + spread[k])))
        else:
            reach.append(0)
    pairs = {}
    for image in itertools.product(*(range(-r, r + 1) for r in reach)):
        shift = np.array(image) @ cell
        vectors = positions[None, :, :] - positions[:, None, :] + shift
        distances = np.linalg.norm(vectors, axis=-1)
        for i, j in zip(*np.nonzero((distances < cutoff) & (distances > 0))):
            pairs[(int(i), int(j), image)] = vectors[i, j]
    return pairs


def shift_form(positions, cell, pbc, cutoff):
    edge_index, shifts = edges(positions, cell, pbc, cutoff)
    assert edge_index.dtype == np.int64 and shifts.dtype == np.float64
    order = np.lexsort((edge_index[1], edge_index[0]))
    np.testing.assert_array_equal(order, np.arange(len(order)))  # sorted by i, then j
    images = np.rint(shifts @ np.linalg.pinv(cell)).astype(int) if np.any(pbc) else np.zeros_like(shifts, int)
    vectors = positions[edge_index[1]] - positions[edge_index[0]] + shifts
    return {(int(i), int(j), tuple(s)): v for i, j, s, v in zip(*edge_index, images, vectors)}


def assert_same_pairs(found, expected):
    keys = sorted(expected)
    assert sorted(found) == keys
    np.testing.assert_allclose([found[k] for k in keys], [expected[k] for k in keys], atol=1e-12)


def small_triclinic():
    rng = np.random.default_rng(7)
    cell = np.array([[3.0, 0.0, 0.0], [0.8, 2.7, 0.0], [0.4, -0.5, 3.2]])
    positions = rng.uniform(0, 1, size=(4, 3)) @ cell
    return positions, cell


def test_small_cell_cutoff_beyond_half_box_matches_brute_force():
    positions, cell = small_triclinic()
    cutoff = 4.1  # more than the whole box in every direction
    expected = brute_force(positions, cell, [True] * 3, cutoff)
    found = shift_form(positions, cell, np.array([True] * 3), cutoff)
    assert_same_pairs(found, expected)
    # the case that matters: atom 0 sees several images of atom 1, and images of itself
    assert sum(1 for i, j, _ in found if (i, j) == (0, 1)) > 3
    assert any(i == j for i, j, _ in found)


def test_partially_periodic_slab_matches_brute_force():
    positions, cell = small_triclinic()
    slab = cell.copy()
    slab[2] = 0.0  # no cell vector in the non-periodic direction
    pbc = [True, True, False]
    expected = brute_force(positions, slab, pbc, 3.5)
    edge_index, shifts = edges(positions, slab, pbc, 3.5)
    images = np.rint(shifts[:, :2] @ np.linalg.inv(slab[:2, :2])).astype(int)
    found = {(int(i), int(j), (a, b, 0)): positions[j] - positions[i] + s
             for i, j, (a, b), s in zip(*edge_index, images, shifts)}
    assert_same_pairs(found, expected)


def test_molecule_without_cell_matches_brute_force(reference_data):
    (ethanol,) = read_frames(reference_data / "rmd17_ethanol" / "train.xyz", index=0)
    expected = brute_force(ethanol.positions, np.zeros((3, 3)), [False] * 3, 3.0)
    for cell in (np.zeros((3, 3)), ethanol.cell):  # the file's 50 Å box is not periodic
        edge_index, shifts = edges(ethanol.positions, cell, ethanol.pbc, 3.0)
        assert not shifts.any()
        found = {(int(i), int(j), (0, 0, 0)): ethanol.positions[j] - ethanol.positions[i]
                 for i, j in zip(*edge_index)}
        assert_same_pairs(found, expected)
    assert 0 < len(expected) < 9 * 8  # the cutoff excludes some pairs


def test_water_box_matches_brute_force(reference_data):
    (water,) = read_frames(reference_data / "water_deepmd" / "water.extxyz", index=7)
    expected = brute_force(water.positions, water.cell, water.pbc, 6.0)
    assert_same_pairs(shift_form(water.positions, water.cell, water.pbc, 6.0), expected)


@pytest.mark.parametrize("cutoff", [1.5, 4.1, 7.0])
def test_ghost_layout_gives_the_same_pair_vectors(cutoff):
    positions, cell = small_triclinic()
    pbc = np.array([True] * 3)
    edge_index, shifts = edges(positions, cell, pbc, cutoff)
    layout = ghost_layout(positions, cell, pbc, cutoff)
    n = layout.n_local
    assert n == len(positions) and layout.n_ghost > 0
    np.testing.assert_array_equal(layout.positions[:n], positions)
    np.testing.assert_array_equal(layout.edge_index[0], edge_index[0])
    assert layout.edge_index[0].max() < n
    ghost_vectors = layout.positions[layout.edge_index[1]] - layout.positions[layout.edge_index[0]]
    np.testing.assert_allclose(ghost_vectors, positions[edge_index[1]] - positions[edge_index[0]] + shifts,
                               atol=1e-12)
    # each ghost is a lattice translate of its owner, every ghost is used, and none is repeated
    np.testing.assert_array_equal(layout.owner[layout.edge_index[1]], edge_index[1])
    offsets = (layout.positions - layout.positions[layout.owner]) @ np.linalg.inv(cell)
    np.testing.assert_allclose(offsets, np.rint(offsets), atol=1e-9)
    assert not np.rint(offsets[n:]).astype(int).tolist().count([0, 0, 0])
    assert set(layout.edge_index[1][layout.edge_index[1] >= n]) == set(range(n, len(layout.positions)))
    keys = np.column_stack([layout.owner[n:], np.rint(offsets[n:])])
    assert len(np.unique(keys, axis=0)) == layout.n_ghost


def test_ghost_layout_of_the_water_box(reference_data):
    (water,) = read_frames(reference_data / "water_deepmd" / "water.extxyz", index=3)
    edge_index, shifts = edges(water.positions, water.cell, water.pbc, 5.0)
    layout = ghost_layout(water.positions, water.cell, water.pbc, 5.0)
    vectors = layout.positions[layout.edge_index[1]] - layout.positions[layout.edge_index[0]]
    np.testing.assert_allclose(vectors, water.positions[edge_index[1]] - water.positions[edge_index[0]]
                               + shifts, atol=1e-12)
    assert 0 < layout.n_ghost and layout.edge_index.shape == edge_index.shape


def test_ghost_layout_of_a_molecule_has_no_ghosts(reference_data):
    (ethanol,) = read_frames(reference_data / "rmd17_ethanol" / "train.xyz", index=0)
    layout = ghost_layout(ethanol.positions, ethanol.cell, ethanol.pbc, 5.0)
    assert layout.n_ghost == 0 and layout.edge_index.shape == (2, 72)


def test_bad_inputs_are_refused():
    positions, cell = small_triclinic()
    with pytest.raises(DataError, match="cell"):
        edges(positions, np.zeros((3, 3)), [True] * 3, 3.0)
    with pytest.raises(DataError, match="NaN"):
        edges(np.full((2, 3), np.nan), cell, [True] * 3, 3.0)
    with pytest.raises(ValueError, match="positive"):
        edges(positions, cell, [True] * 3, 0.0)
