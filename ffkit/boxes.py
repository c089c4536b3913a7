"""Condensed boxes to time models on: a periodic frame replicated, or copies of a molecule packed
at liquid density, and the SPC/E-shaped water box of the MM anchor. Engine-free: `ffkit bench`
and the LAMMPS timing helpers both build their boxes here."""

import math

import numpy as np

AMU_PER_A3 = 0.602214076  # 1 g/cm³ in amu/Å³


def grid(n: int) -> tuple[int, int, int]:
    """The smallest a·b·c ≥ n with a ≤ b ≤ c ≤ 2a (near-cubic), the most cubic among equals."""
    best = None
    for a in range(1, math.ceil(n ** (1 / 3)) + 2):
        for b in range(a, 2 * a + 1):
            c = max(b, math.ceil(n / (a * b)))
            if c <= 2 * a and (best is None or (a * b * c, c - a) < (best[0], best[1])):
                best = (a * b * c, c - a, (a, b, c))
    return best[2]


def replicate(atoms, min_atoms: int):
    """A periodic frame (wrapped) repeated into a near-cubic grid of at least `min_atoms` atoms."""
    frame = atoms.copy()
    frame.wrap()
    return frame.repeat(grid(math.ceil(min_atoms / len(frame))))


def pack(molecule, min_atoms: int, density: float, min_distance: float = 2.0, seed: int = 0, tries: int = 64,
         sweeps: int = 200):
    """Copies of `molecule` on an fcc lattice in a periodic box at `density` (g/cm³), rotated so that
    no two atoms of different molecules are closer than `min_distance` (Å).

    The lattice has 4·a·b·c sites (a ≤ b ≤ c ≤ 2a), the fewest giving ≥ `min_atoms` atoms. Each
    molecule takes the best of `tries` random rotations against its placed neighbours; molecules
    still too close are re-rotated for up to `sweeps` sweeps. Raises ValueError if that fails.
    """
    from ase import Atoms
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    masses = molecule.get_masses()
    local = molecule.positions - masses @ molecule.positions / masses.sum()
    shape = grid(math.ceil(min_atoms / (4 * len(molecule))))
    n_mol = 4 * int(np.prod(shape))
    side = (n_mol * masses.sum() / (density * AMU_PER_A3) / np.prod(shape)) ** (1 / 3)
    cell = side * np.array(shape, dtype=float)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    centres = ((np.indices(shape).reshape(3, -1).T[:, None, :] + basis).reshape(-1, 3)) * side

    def image(delta):
        return delta - cell * np.round(delta / cell)

    reach = 2 * np.linalg.norm(local, axis=1).max() + min_distance
    neighbours = []
    for m in range(n_mol):
        dist = np.linalg.norm(image(centres - centres[m]), axis=1)
        neighbours.append(np.where((dist < reach) & (np.arange(n_mol) != m))[0])
    coords = np.zeros((n_mol, len(molecule), 3))
    placed = np.zeros(n_mol, dtype=bool)
    closest = np.full(n_mol, np.inf)  # each molecule's closest approach to any other (Å)

    def gaps(m, candidates):
        """Closest approach of each candidate placement of molecule m to its placed neighbours."""
        others = coords[neighbours[m][placed[neighbours[m]]]].reshape(-1, 3)
        if not len(others):
            return np.full(len(candidates), np.inf)
        delta = image(candidates[:, :, None, :] - others[None, None, :, :])
        return np.sqrt((delta ** 2).sum(-1)).reshape(len(candidates), -1).min(axis=1)

    def place(m):
        rotations = Rotation.random(tries, random_state=rng).as_matrix()
        candidates = centres[m] + np.einsum("rij,aj->rai", rotations, local)
        if placed[m]:
            candidates = np.concatenate([coords[m][None], candidates])
        found = gaps(m, candidates)
        best = int(np.argmax(found))
        coords[m], placed[m], closest[m] = candidates[best], True, found[best]

    for m in range(n_mol):
        place(m)
    for _ in range(sweeps):
        for m in range(n_mol):
            closest[m] = gaps(m, coords[m][None])[0]
        crowded = np.where(closest < min_distance)[0]
        if not len(crowded):
            break
        for m in rng.permutation(crowded):
            place(m)
    else:
        raise ValueError(f"could not pack {n_mol} copies of {molecule.get_chemical_formula()} at {density} g/cm³ "
                         f"with {min_distance} Å between molecules ({len(crowded)} still closer after {sweeps} "
                         "sweeps); lower the density")
    atoms = Atoms(numbers=np.tile(molecule.numbers, n_mol), positions=coords.reshape(-1, 3), cell=cell, pbc=True)
    atoms.wrap()
    return atoms


def spce_water(min_atoms: int, density: float = 0.997, seed: int = 0):
    """SPC/E-shaped water (O–H 1 Å, H–O–H 109.47°) packed at `density` g/cm³: the anchor's box."""
    from ase import Atoms

    half = math.radians(109.47 / 2)
    water = Atoms("OH2", positions=[[0, 0, 0], [math.sin(half), math.cos(half), 0],
                                    [-math.sin(half), math.cos(half), 0]])
    return pack(water, min_atoms, density, seed=seed)


def is_water(atoms) -> bool:
    """Only O and H, two H per O."""
    numbers = np.asarray(atoms.numbers)
    return set(numbers.tolist()) == {1, 8} and 2 * np.sum(numbers == 8) == np.sum(numbers == 1)
