"""Neighbour lists in the two forms ffkit uses: image shifts (training, ASE) and explicit ghosts (LAMMPS).

Both come from one vesin call, so a model sees exactly the same pairs whichever form it is fed.
"""

from dataclasses import dataclass

import numpy as np
import vesin

from .errors import DataError


def periodic_volume(cell: np.ndarray, pbc: np.ndarray) -> float:
    """Length, area or volume spanned by the periodic cell vectors (1.0 when nothing is periodic).

    Zero means the periodic directions have no usable cell (missing or degenerate vectors).
    """
    vectors = np.asarray(cell, dtype=np.float64)[np.asarray(pbc, dtype=bool)]
    if len(vectors) == 0:
        return 1.0
    gram = vectors @ vectors.T
    return float(np.sqrt(max(np.linalg.det(gram), 0.0)))


def neighbor_pairs(positions, cell, pbc, cutoff: float) -> tuple:
    """(i, j, S) int64 of all directed pairs closer than `cutoff`, sorted by i, j, S.

    S are integer image shifts: r_ij = x_j - x_i + S @ cell.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    cell = np.ascontiguousarray(cell, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    if not cutoff > 0:
        raise ValueError(f"the neighbour cutoff must be positive, got {cutoff}")
    if positions.ndim != 2 or positions.shape[1] != 3 or cell.shape != (3, 3) or pbc.shape != (3,):
        raise ValueError(f"expected positions (N, 3), cell (3, 3), pbc (3,); got "
                         f"{positions.shape}, {cell.shape}, {pbc.shape}")
    if not (np.isfinite(positions).all() and np.isfinite(cell).all()):
        raise DataError("positions or cell contain NaN or inf; no neighbour list can be built from them")
    if pbc.any() and periodic_volume(cell, pbc) < 1e-6:
        raise DataError(f"periodic boundary conditions {pbc.tolist()} need non-zero cell vectors in "
                        f"the periodic directions, got cell {cell.tolist()}; give the box or set pbc off")
    if len(positions) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), dtype=np.int64)
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts = calculator.compute(positions, cell, pbc.tolist(), "ijS")
    i, j, shifts = i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64)
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))
    return i[order], j[order], shifts[order]


def edges(positions, cell, pbc, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Full neighbour list (both directions) within `cutoff` Å.

    Returns edge_index (2, E) int64 of (i, j) and shifts (E, 3) float64 in Å, such that the pair
    vector is r_ij = x_j - x_i + shift. Sorted by i, then j, then image, for determinism.
    Non-periodic directions need no cell (zeros are fine).
    """
    i, j, shifts = neighbor_pairs(positions, cell, pbc, cutoff)
    return np.stack([i, j]), shifts @ np.asarray(cell, dtype=np.float64)


@dataclass
class GhostLayout:
    """A periodic system unrolled the LAMMPS way (docs/artifact.md): local atoms, then ghost images."""

    positions: np.ndarray   # (n_local + n_ghost, 3) Å: local atoms first, then ghost images
    owner: np.ndarray       # (n_local + n_ghost,) int64: the local atom each atom is an image of
    edge_index: np.ndarray  # (2, E) int64: row 0 local centre, row 1 local or ghost neighbour
    n_local: int

    @property
    def n_ghost(self) -> int:
        return len(self.positions) - self.n_local


def ghost_layout(positions, cell, pbc, cutoff: float, layers: int = 1) -> GhostLayout:
    """Turn periodic images into explicit ghost atoms, so an artifact can be fed exactly as LAMMPS does.

    One ghost per distinct (atom, non-zero image shift) that is some local atom's neighbour; the
    pairs are those of `edges`, in the same order. With `layers=2` (message passing, docs/design.md
    §2) the ghosts that are local atoms' neighbours are centres too, with their own pairs, which
    brings in a second shell of ghosts: their edges follow the local atoms' edges.
    """
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    i, j, shifts = neighbor_pairs(positions, cell, pbc, cutoff)
    n_local = len(positions)
    if layers == 2:
        return _two_shell_layout(positions, cell, i, j, shifts)
    if layers != 1:
        raise ValueError(f"ghost_layout: layers must be 1 or 2, not {layers}")
    is_image = np.any(shifts != 0, axis=1)
    images, ghost_of_edge = np.unique(
        np.column_stack([j[is_image], shifts[is_image]]).reshape(-1, 4), axis=0, return_inverse=True
    )
    neighbor = j.copy()
    neighbor[is_image] = n_local + ghost_of_edge.reshape(-1)
    ghost_positions = positions[images[:, 0]] + images[:, 1:] @ cell
    return GhostLayout(
        positions=np.concatenate([positions, ghost_positions.reshape(-1, 3)]),
        owner=np.concatenate([np.arange(n_local, dtype=np.int64), images[:, 0]]),
        edge_index=np.stack([i, neighbor]),
        n_local=n_local,
    )


def _two_shell_layout(positions: np.ndarray, cell: np.ndarray, i, j, shifts) -> GhostLayout:
    """Atoms are (owner, image shift): locals (shift 0), then the first shell numbered as the one-shell
    layout numbers it, then the second shell in order of first appearance."""
    n_local = len(positions)
    starts = np.searchsorted(i, np.arange(n_local))  # pairs are sorted by i
    counts = np.bincount(i, minlength=n_local)
    # first-shell ghosts: the images among local atoms' neighbours, as in the one-shell layout
    is_image = np.any(shifts != 0, axis=1)
    shell = np.unique(np.column_stack([j[is_image], shifts[is_image]]), axis=0)
    # their edges: the owner's edges, shifted by the ghost's image
    rows = np.concatenate([np.arange(starts[a], starts[a] + counts[a]) for a in shell[:, 0]]) if len(shell) else \
        np.zeros(0, dtype=np.int64)
    reps = counts[shell[:, 0]]
    centre_keys = np.repeat(shell, reps, axis=0)
    neighbour_keys = np.column_stack([j[rows], shifts[rows] + centre_keys[:, 1:]])
    local_keys = np.column_stack([np.arange(n_local), np.zeros((n_local, 3), dtype=np.int64)])
    # numbering: locals, the first shell as the one-shell layout numbers it, then the second shell
    keys = np.concatenate([local_keys, shell, np.column_stack([j, shifts]), centre_keys, neighbour_keys])
    unique, first_seen, index = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first_seen, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    index = rank[index.reshape(-1)]
    atoms = unique[order]
    start, n_edges = n_local + len(shell), len(i)
    centres = np.concatenate([i, index[start + n_edges:start + n_edges + len(rows)]])
    neighbours = np.concatenate([index[start:start + n_edges], index[start + n_edges + len(rows):]])
    return GhostLayout(positions=positions[atoms[:, 0]] + atoms[:, 1:] @ cell, owner=atoms[:, 0].astype(np.int64),
                       edge_index=np.stack([centres, neighbours]), n_local=n_local)
