"""Force parity: do the forces the engine dumped equal the model's own on the same frames?

Re-evaluating sampled frames with the model's ASE calculator catches an engine interface that
drops ghost forces, mixes units or loads the wrong model. Reference forces come from the
trajectory (LAMMPS ``dump ... fx fy fz``, GROMACS trr) and are converted to eV/Å.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.lib.mdamath import triclinic_vectors

from .loading import ValidationInputError


def atoms_from_frame(atomgroup, ts) -> Atoms:
    """An ASE Atoms (elements, positions, cell) for the current frame of ``atomgroup``."""
    periodic = ts.dimensions is not None
    cell = triclinic_vectors(ts.dimensions) if periodic else None
    return Atoms(symbols=list(atomgroup.elements), positions=atomgroup.positions.astype(np.float64),
                 cell=cell, pbc=periodic)


class ForceParity(AnalysisBase):
    """Per-frame force errors of ``calculator`` against the trajectory's stored forces (eV/Å).

    Serial only: a calculator holding a compiled model is not worth shipping to workers for the
    handful of frames parity needs. Results per frame: ``mae``, ``rmse``, ``max_abs``,
    ``reference_rms``; after ``run``: ``overall`` with the same over all frames plus
    ``relative_rmse`` and ``worst_atom`` (index, frame).
    """

    def __init__(self, universe, calculator, force_to_eV_per_A: float, **kwargs):
        super().__init__(universe.trajectory, **kwargs)
        self.atoms = universe.atoms
        self.calculator = calculator
        self.factor = float(force_to_eV_per_A)

    def _prepare(self):
        if not self._trajectory.ts.has_forces:
            raise ValidationInputError(
                f"{self._trajectory.filename}: trajectory has no forces, so --model has nothing to compare with; "
                "dump them (LAMMPS: 'dump ID all custom N FILE id type x y z fx fy fz'; GROMACS: nstfout)"
            )
        n = self.n_frames
        self.results.mae = np.zeros(n)
        self.results.rmse = np.zeros(n)
        self.results.max_abs = np.zeros(n)
        self.results.reference_rms = np.zeros(n)
        self._worst = (0.0, -1, -1)

    def _single_frame(self):
        i = self._frame_index
        atoms = atoms_from_frame(self.atoms, self._ts)
        atoms.calc = self.calculator
        predicted = atoms.get_forces()
        reference = self._ts.forces.astype(np.float64) * self.factor
        error = np.abs(predicted - reference)
        self.results.mae[i] = error.mean()
        self.results.rmse[i] = np.sqrt((error ** 2).mean())
        self.results.max_abs[i] = error.max()
        self.results.reference_rms[i] = np.sqrt((reference ** 2).mean())
        atom = int(np.argmax(error.max(axis=1)))
        if error.max() > self._worst[0] or not np.isfinite(error.max()):
            self._worst = (float(error.max()), atom, int(self._ts.frame))

    def _conclude(self):
        r = self.results
        rmse = float(np.sqrt(np.mean(r.rmse ** 2)))
        ref_rms = float(np.sqrt(np.mean(r.reference_rms ** 2)))
        r.overall = {
            "frames": [int(f) for f in self.frames],
            "mae_eV_A": float(np.mean(r.mae)),
            "rmse_eV_A": rmse,
            "max_abs_eV_A": float(np.max(r.max_abs)),
            "relative_rmse": rmse / ref_rms if ref_rms > 0 else float("inf"),
            "worst_atom": self._worst[1],
            "worst_frame": self._worst[2],
        }
