"""Structure of a trajectory: RDFs, bonded-geometry distributions, density and diffusion.

These are the observables a model must reproduce to be trusted for production MD; each is an
MDAnalysis analysis (``InterRDF``, ``EinsteinMSD`` or an ``AnalysisBase`` here), so the
frame-parallel ones run with MDAnalysis's backends.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.analysis.rdf import InterRDF
from MDAnalysis.analysis.results import ResultsGroup
from MDAnalysis.lib.distances import calc_angles, calc_bonds, calc_dihedrals
from MDAnalysis.lib.mdamath import triclinic_vectors

from .stability import bonded_pairs, covalent_radius

AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660  # 1 u/Å³ in g/cm³
A2_PER_PS_IN_1E5_CM2_PER_S = 10.0  # 1 Å²/ps = 1e-4 cm²/s = 10 × 1e-5 cm²/s
# Histogram ranges: bond lengths (Å), angles and dihedrals (degrees)
BOND_RANGE, BOND_BINS = (0.0, 3.0), 300
ANGLE_RANGE, ANGLE_BINS = (0.0, 180.0), 180
DIHEDRAL_RANGE, DIHEDRAL_BINS = (-180.0, 180.0), 72


def max_rdf_range(universe, r_max: float) -> float:
    """``r_max`` limited to half the smallest box width (the minimum-image limit)."""
    dims = universe.trajectory.ts.dimensions
    if dims is None:
        return r_max
    vectors = triclinic_vectors(dims)
    volume = abs(np.linalg.det(vectors))
    widths = [volume / np.linalg.norm(np.cross(vectors[(k + 1) % 3], vectors[(k + 2) % 3]))
              for k in range(3)]
    return float(min(r_max, 0.5 * min(widths) - 1e-6))


def element_pairs(elements) -> list[tuple[str, str]]:
    """All element pairs (a, b) with a <= b in the order elements first appear."""
    unique = list(dict.fromkeys(elements))
    return [tuple(sorted(p)) for p in itertools.combinations_with_replacement(unique, 2)]


def element_rdfs(universe, r_max: float = 6.0, nbins: int = 120, pairs=None,
                 **run_kwargs) -> dict[str, dict]:
    """Element-pair RDFs with MDAnalysis's ``InterRDF``: {"O-H": {"r": ..., "g": ...}}.

    Self-pairs are excluded; ``run_kwargs`` go to ``InterRDF.run`` (frames, backend, n_workers).
    """
    if universe.trajectory.ts.dimensions is None:
        raise ValueError("RDFs need a periodic box; the trajectory has none")
    r_max = max_rdf_range(universe, r_max)
    out = {}
    for a, b in pairs or element_pairs(universe.atoms.elements):
        g1 = universe.select_atoms(f"element {a}")
        g2 = universe.select_atoms(f"element {b}")
        kwargs = {"exclusion_block": (1, 1)} if a == b else {}
        rdf = InterRDF(g1, g2, nbins=nbins, range=(0.0, r_max), **kwargs).run(**run_kwargs)
        out[f"{a}-{b}"] = {"r": rdf.results.bins.copy(), "g": rdf.results.rdf.copy()}
    return out


def canonical_key(symbols) -> str:
    """'O-H' and 'H-O' are one bond type: the lexically smaller direction names it."""
    forward, backward = list(symbols), list(symbols)[::-1]
    return "-".join(min(forward, backward))


def bonded_terms(bonds: np.ndarray, n_atoms: int):
    """Angles (i, j, k) and dihedrals (i, j, k, l) implied by a bond list."""
    neighbours = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[i].append(j)
        neighbours[j].append(i)
    angles = [(i, j, k) for j in range(n_atoms)
              for i, k in itertools.combinations(sorted(neighbours[j]), 2)]
    dihedrals = [(i, j, k, l) for j, k in bonds
                 for i in neighbours[j] if i != k
                 for l in neighbours[k] if l not in (j, i)]
    return (np.array(angles, dtype=np.int64).reshape(-1, 3),
            np.array(dihedrals, dtype=np.int64).reshape(-1, 4))


class BondedDistributions(AnalysisBase):
    """Histograms of bond lengths (Å), angles and dihedrals (degrees) per element pattern.

    The bonded graph is the covalent graph of ``reference_frame`` (the same one the stability
    check uses), so it works for engines whose files carry no bonds. Results: ``bonds``,
    ``angles``, ``dihedrals``, each {key: {"x": bin centres, "p": probability density}}, and
    ``means`` {"bonds:O-H": mean value, ...} of bonds and angles.
    """

    _analysis_algorithm_is_parallelizable = True

    @classmethod
    def get_supported_backends(cls):
        return ("serial", "multiprocessing", "dask")

    def __init__(self, atomgroup, bond_factor: float = 1.2, reference_frame: int = 0, **kwargs):
        super().__init__(atomgroup.universe.trajectory, **kwargs)
        self.atoms = atomgroup
        trajectory = atomgroup.universe.trajectory
        current = trajectory.ts.frame
        ts = trajectory[reference_frame]
        self.bonds = bonded_pairs(atomgroup.positions.astype(np.float64),
                                  covalent_radius(atomgroup.elements), ts.dimensions, bond_factor)
        trajectory[current]
        self.angles, self.dihedrals = bonded_terms(self.bonds, len(atomgroup))
        elements = np.asarray(atomgroup.elements)
        self._terms = {}
        for kind, index in (("bonds", self.bonds), ("angles", self.angles),
                            ("dihedrals", self.dihedrals)):
            keys = np.array([canonical_key(elements[row]) for row in index], dtype=object)
            self._terms[kind] = {key: index[keys == key] for key in sorted(set(keys))}

    _SPECS = {"bonds": (BOND_RANGE, BOND_BINS), "angles": (ANGLE_RANGE, ANGLE_BINS),
              "dihedrals": (DIHEDRAL_RANGE, DIHEDRAL_BINS)}

    def _prepare(self):
        for kind, terms in self._terms.items():
            (_, _), bins = self._SPECS[kind]
            self.results[f"{kind}_counts"] = {key: np.zeros(bins) for key in terms}

    def _values(self, kind: str, index: np.ndarray, x: np.ndarray, box) -> np.ndarray:
        if kind == "bonds":
            return calc_bonds(x[index[:, 0]], x[index[:, 1]], box=box)
        if kind == "angles":
            return np.degrees(calc_angles(x[index[:, 0]], x[index[:, 1]], x[index[:, 2]], box=box))
        return np.degrees(calc_dihedrals(x[index[:, 0]], x[index[:, 1]], x[index[:, 2]],
                                         x[index[:, 3]], box=box))

    def _single_frame(self):
        x = self.atoms.positions
        if not np.isfinite(x).all():
            return
        box = self._ts.dimensions
        for kind, terms in self._terms.items():
            value_range, bins = self._SPECS[kind]
            for key, index in terms.items():
                counts, _ = np.histogram(self._values(kind, index, x, box), bins=bins,
                                         range=value_range)
                self.results[f"{kind}_counts"][key] += counts

    def _get_aggregator(self):
        def sum_dicts(parts):
            return {key: np.sum([p[key] for p in parts], axis=0) for key in parts[0]}

        return ResultsGroup(lookup={f"{kind}_counts": sum_dicts for kind in self._SPECS})

    def _conclude(self):
        self.results.means = {}
        for kind, (value_range, bins) in self._SPECS.items():
            edges = np.linspace(*value_range, bins + 1)
            centres = 0.5 * (edges[1:] + edges[:-1])
            dists = {}
            for key, counts in self.results[f"{kind}_counts"].items():
                total = counts.sum()
                density = counts / (total * np.diff(edges)) if total else counts
                dists[key] = {"x": centres, "p": density}
                if total and kind != "dihedrals":  # a signed angle's mean says nothing
                    self.results.means[f"{kind}:{key}"] = float((centres * counts).sum() / total)
            self.results[kind] = dists


class DensityTimeSeries(AnalysisBase):
    """Mass density (g/cm³) and volume (Å³) per frame; needs masses and a periodic box."""

    _analysis_algorithm_is_parallelizable = True

    @classmethod
    def get_supported_backends(cls):
        return ("serial", "multiprocessing", "dask")

    def __init__(self, atomgroup, **kwargs):
        super().__init__(atomgroup.universe.trajectory, **kwargs)
        self.mass = float(atomgroup.masses.sum())

    def _prepare(self):
        self.results.volume = np.full(self.n_frames, np.nan)

    def _single_frame(self):
        if self._ts.dimensions is not None:
            self.results.volume[self._frame_index] = abs(np.linalg.det(triclinic_vectors(self._ts.dimensions)))

    def _get_aggregator(self):
        return ResultsGroup(lookup={"volume": ResultsGroup.ndarray_hstack})

    def _conclude(self):
        self.results.density = self.mass / self.results.volume * AMU_PER_A3_IN_G_PER_CM3


def diffusion_coefficients(universe, fit_range=(0.2, 0.6)) -> dict[str, dict]:
    """Self-diffusion per element from MDAnalysis's ``EinsteinMSD`` on unwrapped coordinates.

    The trajectory is unwrapped with ``NoJump`` on a copy of the Universe (the original keeps
    its wrapped coordinates); D = slope / 6 of MSD(t) fitted over ``fit_range`` of the lag times.
    Returns {element: {"D_A2_per_ps", "D_1e-5_cm2_per_s", "lag_ps", "msd_A2"}}.
    """
    from MDAnalysis.analysis.msd import EinsteinMSD
    from MDAnalysis.transformations.nojump import NoJump

    if universe.trajectory.n_frames < 5:
        raise ValueError("diffusion needs at least 5 frames")
    copy = universe.copy()
    if copy.trajectory.ts.dimensions is not None:
        copy.trajectory.add_transformations(NoJump(check_continuity=False))
    out = {}
    for element in dict.fromkeys(copy.atoms.elements):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            msd = EinsteinMSD(copy, select=f"element {element}", fft=False).run()
        lag, values = msd.results.delta_t_values, msd.results.timeseries
        lo, hi = (max(1, int(f * (len(lag) - 1))) for f in fit_range)
        hi = max(hi, lo + 2)
        slope = np.polyfit(lag[lo:hi], values[lo:hi], 1)[0]
        d = slope / 6.0
        out[element] = {"D_A2_per_ps": float(d), "D_1e-5_cm2_per_s": float(d * A2_PER_PS_IN_1E5_CM2_PER_S),
                        "lag_ps": lag, "msd_A2": values}
    return out
