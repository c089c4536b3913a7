"""Frame-by-frame stability of a trajectory: did the model keep the system physical?

A force field that fails shows it in the geometry before anything else: atoms collapse onto each
other, covalent bonds stretch apart or new ones form, coordinates become NaN, atoms fly out of
the box or jump between two frames. The "stability horizon" is the time of the first frame where
any of that happens. The analysis is an MDAnalysis ``AnalysisBase`` that runs frame-parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers, covalent_radii
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.analysis.results import ResultsGroup
from MDAnalysis.lib.distances import calc_bonds, minimize_vectors, self_capped_distance

from .loading import ValidationInputError


@dataclass
class StabilityLimits:
    """What counts as a failure in one frame (lengths in Å)."""

    min_distance_A: float = 0.5  # closer than this = atoms collapsed onto each other
    bond_factor: float = 1.2  # bonded if closer than this times the sum of covalent radii
    bond_break_factor: float = 1.5  # broken if longer than this times its first-frame length
    max_formed_bonds: int = 0  # bonds absent in the first frame tolerated per frame
    box_margin_A: float = 3.0  # outside the box by more than this = left the box
    jump_A: float = 3.0  # displacement between two frames flagged above this ...
    jump_factor: float = 20.0  # ... and above this times the frame's median displacement


def covalent_radius(elements) -> np.ndarray:
    """ASE covalent radii (Å) for element symbols."""
    return covalent_radii[[atomic_numbers[e.capitalize()] for e in elements]]


def bonded_pairs(positions: np.ndarray, radii: np.ndarray, box, bond_factor: float) -> np.ndarray:
    """Pairs (i < j) closer than ``bond_factor`` × (r_i + r_j): the covalent graph of a frame."""
    cap = bond_factor * 2 * radii.max()
    pairs, dist = self_capped_distance(positions, cap, box=box)
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    keep = dist < bond_factor * (radii[pairs[:, 0]] + radii[pairs[:, 1]])
    pairs = np.sort(pairs[keep], axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


class StabilityAnalysis(AnalysisBase):
    """Per-frame failure indicators of an AtomGroup; see :class:`StabilityLimits`.

    The covalent graph is taken from ``reference_frame`` (default: the trajectory's first
    frame) when the analysis is created, so every parallel worker compares against the same one.
    Results (one entry per analysed frame): ``min_distance``, ``n_nonfinite``,
    ``max_bond_strain`` (length / first-frame length − 1), ``worst_bond`` (atom indices),
    ``n_broken_bonds``, ``n_formed_bonds``, ``n_outside_box``, ``max_jump``, ``n_jumps``,
    ``failed``; after ``run``: ``horizon_frame``, ``horizon_time`` (ps, None when stable) and
    ``first_failure`` (what failed first, in words).
    """

    _analysis_algorithm_is_parallelizable = True

    @classmethod
    def get_supported_backends(cls):
        return ("serial", "multiprocessing", "dask")

    def __init__(self, atomgroup, limits: StabilityLimits | None = None, reference_frame: int = 0,
                 check_box: bool | None = None, **kwargs):
        super().__init__(atomgroup.universe.trajectory, **kwargs)
        self.atoms = atomgroup
        self.limits = limits or StabilityLimits()
        self.radii = covalent_radius(atomgroup.elements)
        trajectory = atomgroup.universe.trajectory
        current = trajectory.ts.frame
        ts = trajectory[reference_frame]
        positions = atomgroup.positions.copy()
        self._box = None if ts.dimensions is None else ts.dimensions.copy()
        if not np.isfinite(positions).all():
            raise ValidationInputError(
                f"{trajectory.filename}: frame {reference_frame}, the reference for the bonded "
                "graph, has NaN/inf coordinates")
        self.bonds = bonded_pairs(positions, self.radii, self._box, self.limits.bond_factor)
        self.bond_lengths0 = calc_bonds(positions[self.bonds[:, 0]], positions[self.bonds[:, 1]],
                                        box=self._box)
        self._bond_keys = set(map(tuple, self.bonds.tolist()))
        if check_box is None:  # wrapped coordinates stay in the box; unwrapped ones need not
            check_box = self._box is not None and self._count_outside(positions, self._box) == 0
        self.check_box = bool(check_box)
        trajectory[current]

    def _count_outside(self, positions: np.ndarray, box) -> int:
        from MDAnalysis.lib.mdamath import triclinic_vectors

        vectors = triclinic_vectors(box)
        frac = positions @ np.linalg.inv(vectors)
        margin = self.limits.box_margin_A / np.linalg.norm(vectors, axis=1)
        return int(np.count_nonzero(((frac < -margin) | (frac > 1 + margin)).any(axis=1)))

    def _prepare(self):
        n = self.n_frames
        r = self.results
        r.min_distance = np.full(n, np.nan)
        r.n_nonfinite = np.zeros(n, dtype=int)
        r.max_bond_strain = np.zeros(n)
        r.worst_bond = np.full((n, 2), -1, dtype=int)
        r.n_broken_bonds = np.zeros(n, dtype=int)
        r.n_formed_bonds = np.zeros(n, dtype=int)
        r.n_outside_box = np.zeros(n, dtype=int)
        r.max_jump = np.full(n, np.nan)
        r.n_jumps = np.zeros(n, dtype=int)
        # first/last positions of this worker's frames, to fill jumps across part boundaries
        r.part_ends = []
        self._previous = None  # finite positions of the previous frame
        self._first = None  # positions of this part's first frame (if finite) and its box
        self._first_box = None

    def _single_frame(self):
        i, r, lim = self._frame_index, self.results, self.limits
        x = self.atoms.positions.astype(np.float64)
        box = self._ts.dimensions
        finite = np.isfinite(x).all(axis=1)
        r.n_nonfinite[i] = int(np.count_nonzero(~finite))
        if i == 0:
            self._first = x if finite.all() else None
            self._first_box = None if box is None else box.copy()
        if r.n_nonfinite[i]:
            r.min_distance[i] = np.nan
            r.max_bond_strain[i] = np.inf
            self._previous = None
            return
        cap = 4 * lim.min_distance_A  # the minimum is only needed below this
        _, dist = self_capped_distance(x, cap, box=box)
        r.min_distance[i] = dist.min() if len(dist) else cap
        if len(self.bonds):
            lengths = calc_bonds(x[self.bonds[:, 0]], x[self.bonds[:, 1]], box=box)
            strain = lengths / self.bond_lengths0 - 1.0
            worst = int(np.argmax(strain))
            r.max_bond_strain[i] = strain[worst]
            r.worst_bond[i] = self.bonds[worst]
            r.n_broken_bonds[i] = int(np.count_nonzero(lengths > lim.bond_break_factor * self.bond_lengths0))
        now = bonded_pairs(x, self.radii, box, lim.bond_factor)
        r.n_formed_bonds[i] = sum(1 for p in map(tuple, now.tolist()) if p not in self._bond_keys)
        if self.check_box and box is not None:
            r.n_outside_box[i] = self._count_outside(x, box)
        if self._previous is not None:
            r.max_jump[i], r.n_jumps[i] = self._jumps(self._previous, x, box)
        self._previous = x

    def _jumps(self, before: np.ndarray, after: np.ndarray, box) -> tuple[float, int]:
        step = after - before
        if box is not None:
            step = minimize_vectors(step.astype(np.float32), box).astype(np.float64)
        disp = np.linalg.norm(step, axis=1)
        limit = max(self.limits.jump_A, self.limits.jump_factor * float(np.median(disp)))
        return float(disp.max()), int(np.count_nonzero(disp > limit))

    def _compute(self, *args, **kwargs):
        out = super()._compute(*args, **kwargs)
        self.results.part_ends = [{"n_frames": self.n_frames, "first": self._first,
                                   "box": self._first_box, "last": self._previous}]
        return out

    def _get_aggregator(self):
        stack = ResultsGroup.ndarray_hstack
        return ResultsGroup(lookup={
            "min_distance": stack, "n_nonfinite": stack, "max_bond_strain": stack,
            "worst_bond": ResultsGroup.ndarray_vstack, "n_broken_bonds": stack,
            "n_formed_bonds": stack, "n_outside_box": stack, "max_jump": stack, "n_jumps": stack,
            "part_ends": ResultsGroup.flatten_sequence,
        })

    def _conclude(self):
        r, lim = self.results, self.limits
        # jumps across the boundary between two workers' parts of the trajectory
        first_of_part = 0
        for before, after in zip(r.part_ends[:-1], r.part_ends[1:]):
            first_of_part += before["n_frames"]
            if before["last"] is not None and after["first"] is not None:
                r.max_jump[first_of_part], r.n_jumps[first_of_part] = self._jumps(
                    before["last"], after["first"], after["box"])
        del r["part_ends"]
        r.failed = (
            (r.n_nonfinite > 0)
            | (r.min_distance < lim.min_distance_A)
            | (r.n_broken_bonds > 0)
            | (r.n_formed_bonds > lim.max_formed_bonds)
            | (r.n_outside_box > 0)
            | (r.n_jumps > 0)
        )
        bad = np.flatnonzero(r.failed)
        r.horizon_frame = int(self.frames[bad[0]]) if len(bad) else None
        r.horizon_time = float(self.times[bad[0]]) if len(bad) else None
        r.first_failure = self._describe(bad[0]) if len(bad) else None

    def _describe(self, i: int) -> str:
        r, lim = self.results, self.limits
        frame = int(self.frames[i])
        what = []
        if r.n_nonfinite[i]:
            what.append(f"{r.n_nonfinite[i]} atoms with NaN/inf coordinates")
        if r.min_distance[i] < lim.min_distance_A:
            what.append(f"two atoms {r.min_distance[i]:.3f} Å apart (< {lim.min_distance_A} Å)")
        if r.n_broken_bonds[i]:
            a, b = r.worst_bond[i]
            what.append(f"{r.n_broken_bonds[i]} broken bonds (worst: atoms {a}-{b} stretched "
                        f"{100 * r.max_bond_strain[i]:.0f}%)")
        if r.n_formed_bonds[i] > lim.max_formed_bonds:
            what.append(f"{r.n_formed_bonds[i]} bonds not in the first frame")
        if r.n_outside_box[i]:
            what.append(f"{r.n_outside_box[i]} atoms outside the box by > {lim.box_margin_A} Å")
        if r.n_jumps[i]:
            what.append(f"{r.n_jumps[i]} atoms jumped (max {r.max_jump[i]:.2f} Å since the previous frame)")
        return f"frame {frame}: " + "; ".join(what)
