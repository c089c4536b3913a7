"""Reading QM training data (extended XYZ, DeePMD folders, rMD17-style npz) into checked frames.

Every frame is converted to eV and Å and validated on the way in, so that bad data stops here with
a message naming the file, the frame and the field, instead of surfacing later as a NaN loss.
"""

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from ase.data import atomic_numbers

from .errors import DataError
from .neighbors import neighbor_pairs, periodic_volume
from .units import energy_factor, length_factor

FORMATS = ("extxyz", "deepmd", "npz")
MIN_DISTANCE = 0.1  # Å; closer atoms are duplicates (a broken file), not chemistry


@dataclass
class Frame:
    """One structure in eV and Å."""

    numbers: np.ndarray          # (N,) int64 atomic numbers
    positions: np.ndarray        # (N, 3) float64, Å
    cell: np.ndarray             # (3, 3) float64, Å, rows are box vectors (zeros if no cell)
    pbc: np.ndarray              # (3,) bool
    energy: Optional[float]      # eV, total energy of the structure
    forces: Optional[np.ndarray]  # (N, 3) float64, eV/Å
    source: str                  # "path:frame_index", for messages

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def where(self) -> str:
        """'file, frame k': how messages about this frame start."""
        file, sep, index = self.source.rpartition(":")
        return f"{file}, frame {index}" if sep else self.source

    def to_atoms(self):
        """The structure as ASE Atoms (no labels): what calculators and engine adapters take."""
        from ase import Atoms

        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)


@dataclass
class _RawFrame:
    """A frame as the file stores it (file units, unchecked), plus what a 'missing' message needs."""

    file: str
    index: int
    numbers: Any
    positions: Any
    cell: Any
    pbc: Any
    energy: Any
    forces: Any
    energy_field: str    # where the reader looked for the energy
    forces_field: str
    found: str           # what the reader found instead, listed when a field is missing
    renamable: bool      # True when energy_key/forces_key choose the field


def detect_format(path: Union[str, Path]) -> str:
    """The format implied by a path: a folder is DeePMD, .npz is npz, .xyz/.extxyz is extended XYZ."""
    path = Path(path)
    if path.is_dir():
        return "deepmd"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in (".xyz", ".extxyz"):
        return "extxyz"
    raise DataError(f"{path}: cannot tell the data format from the name; pass fmt= (one of "
                    f"{', '.join(FORMATS)}) or use a .xyz/.extxyz/.npz name or a DeePMD folder")


def read_frames(path, fmt: Optional[str] = None, *, energy_key: str = "energy",
                forces_key: str = "forces", energy_unit: str = "eV", length_unit: str = "angstrom",
                require_energy: bool = True, require_forces: bool = True,
                index: Union[str, int, slice] = ":") -> list:
    """Read and validate frames, converted from `energy_unit`/`length_unit` to eV and Å.

    `energy_key`/`forces_key` name the fields in extxyz (info / per-atom arrays, or ASE's
    calculator results) and npz files (tried before the rMD17 names E/energies, F/forces).
    `index` selects frames like Python slicing (":", "::10", "0:100", 5) over the whole input.
    The original rMD17 npz files store kcal/mol: pass energy_unit="kcal/mol" for them.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path (relative paths start at {Path.cwd()})")
    fmt = fmt or detect_format(path)
    if path.is_dir() != (fmt == "deepmd"):
        raise DataError(f"{path}: {'a folder' if path.is_dir() else 'a file'} cannot hold {fmt} data; "
                        f"DeePMD data is a folder, extxyz and npz are files; pass the right path or fmt=")
    readers = {"extxyz": _read_extxyz, "deepmd": _read_deepmd, "npz": _read_npz}
    if fmt not in readers:
        raise DataError(f"{path}: unknown data format {fmt!r}; use one of {', '.join(FORMATS)}")
    to_ev, to_angstrom = energy_factor(energy_unit), length_factor(length_unit)
    selected = readers[fmt](path, energy_key, forces_key, lambda frames: _select(frames, index, path))
    return [_checked(r, to_ev, to_angstrom, require_energy, require_forces) for r in selected]


def _select(raw: list, index, path: Path) -> list:
    """The frames `index` picks (readers call this before the expensive per-frame work)."""
    if not raw:
        raise DataError(f"{path}: no frames found (empty data); check that it is the right file")
    if isinstance(index, (int, np.integer)):
        if not -len(raw) <= index < len(raw):
            raise DataError(f"{path}: frame index {index} is out of range; the data has {len(raw)} frames")
        return [raw[index]]
    if isinstance(index, str):
        try:
            parts = [int(p) if p.strip() else None for p in index.split(":")]
        except ValueError:
            parts = []
        if len(parts) == 1 and parts[0] is not None:
            return _select(raw, parts[0], path)
        if not 2 <= len(parts) <= 3:
            raise DataError(f"{path}: cannot understand index={index!r}; use a frame number or a "
                            "slice such as ':', '0:100' or '::10'")
        index = slice(*parts)
    selected = raw[index]
    if not selected:
        raise DataError(f"{path}: index={index} selects no frames out of {len(raw)}")
    return selected


def _checked(raw: _RawFrame, to_ev: float, to_angstrom: float, require_energy: bool,
             require_forces: bool) -> Frame:
    """Convert units and validate one frame; every failure names file, frame and field."""
    where = f"{raw.file}, frame {raw.index}"
    numbers = np.asarray(raw.numbers)
    n = len(numbers)
    if n == 0:
        raise DataError(f"{where}: the frame has no atoms; remove it from the file")
    if not np.issubdtype(numbers.dtype, np.integer):
        if not np.all(np.isfinite(numbers.astype(np.float64))) or np.any(numbers != np.round(numbers)):
            raise DataError(f"{where}, field 'numbers': atomic numbers must be integers, got {numbers[:5]}...")
    numbers = numbers.astype(np.int64)
    bad = np.flatnonzero((numbers < 1) | (numbers > 118))
    if len(bad):
        raise DataError(f"{where}, field 'numbers': atom {bad[0]} has atomic number {numbers[bad[0]]}, "
                        "which is no element (valid: 1-118); fix the species/atomic-number column")

    positions = _float_array(raw.positions, where, "positions") * to_angstrom
    if positions.shape != (n, 3):
        raise DataError(f"{where}, field 'positions': shape {positions.shape}, expected ({n}, 3)")
    _require_finite(positions, where, "positions")

    pbc = np.asarray(raw.pbc, dtype=bool).reshape(3)
    cell = _float_array(raw.cell, where, "cell")
    if cell.size != 9:
        raise DataError(f"{where}, field 'cell': {cell.size} values, expected a 3x3 box (9 values)")
    cell = cell.reshape(3, 3) * to_angstrom
    _require_finite(cell, where, "cell")
    if pbc.any() and periodic_volume(cell, pbc) < 1e-6:
        raise DataError(f"{where}, field 'cell': pbc is {pbc.tolist()} but the cell {cell.tolist()} "
                        "is missing or degenerate (zero volume) in the periodic directions; give the "
                        "box (extxyz Lattice=, DeePMD box.npy) or turn pbc off (extxyz pbc=\"F F F\")")

    energy = None
    if raw.energy is None:
        if require_energy:
            raise DataError(_missing(raw, "energy", raw.energy_field))
    else:
        value = _float_array(raw.energy, where, raw.energy_field)
        if value.size != 1:
            raise DataError(f"{where}, field '{raw.energy_field}': expected one total energy, got "
                            f"shape {value.shape}; name the per-structure energy with energy_key=")
        energy = float(value.reshape(())) * to_ev
        _require_finite(np.array([energy]), where, raw.energy_field)

    forces = None
    if raw.forces is None:
        if require_forces:
            raise DataError(_missing(raw, "forces", raw.forces_field))
    else:
        forces = _float_array(raw.forces, where, raw.forces_field) * (to_ev / to_angstrom)
        if forces.shape != (n, 3):
            raise DataError(f"{where}, field '{raw.forces_field}': shape {forces.shape} but the frame "
                            f"has {n} atoms, expected ({n}, 3); the forces belong to another structure "
                            "or the file is truncated")
        _require_finite(forces, where, raw.forces_field)

    _require_no_duplicates(positions, cell, pbc, where)
    return Frame(numbers, positions, cell, pbc, energy, forces, f"{raw.file}:{raw.index}")


def _missing(raw: _RawFrame, kind: str, field: str) -> str:
    if raw.renamable:
        fix = (f"pass {kind}_key=NAME (CLI --{kind}-key NAME) naming the {kind} entry, or "
               f"require_{kind}=False to read without {kind}")
    else:
        fix = f"add {field}, or pass require_{kind}=False to read without {kind}"
    return f"{raw.file}, frame {raw.index}, field '{field}': no {kind} found; {raw.found}. Fix: {fix}"


def _float_array(value, where: str, field: str) -> np.ndarray:
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}, field '{field}': not numeric ({str(value)[:60]!r})") from None


def _require_finite(values: np.ndarray, where: str, field: str) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        at = f" at atom {bad[0][0]}" if values.ndim == 2 and field != "cell" else ""
        raise DataError(f"{where}, field '{field}': contains {values[tuple(bad[0])]}{at} "
                        f"({len(bad)} non-finite value(s)); remove or recompute this frame")


def _require_no_duplicates(positions, cell, pbc, where: str) -> None:
    # vesin's cell list is slow for a tiny cutoff (many empty cells), so search 1 Å and filter
    i, j, shifts = neighbor_pairs(positions, cell, pbc, 1.0)
    distances = np.linalg.norm(positions[j] - positions[i] + shifts @ cell, axis=1)
    close = np.flatnonzero(distances < MIN_DISTANCE)
    if len(close):
        k = close[np.argmin(shifts[close].any(axis=1))]  # prefer a pair without image shift
        image = f" (periodic image {shifts[k].tolist()})" if shifts[k].any() else ""
        raise DataError(f"{where}, field 'positions': atoms {i[k]} and {j[k]}{image} are "
                        f"{distances[k]:.4f} Å apart (< {MIN_DISTANCE} Å): a duplicated atom; "
                        "remove one of them")


# ---------------------------------------------------------------- extended XYZ

def _read_extxyz(path: Path, energy_key: str, forces_key: str, select) -> list:
    """Split the file into frames ourselves (ASE silently stops at a blank line), parse each with ASE."""
    from ase.io.extxyz import read_extxyz

    try:
        lines = path.read_text().splitlines(keepends=True)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file, so not extended XYZ; pass the right file or fmt=") from None
    chunks, start = [], 0  # (frame index, first line, end line)
    while start < len(lines):
        where = f"{path}, frame {len(chunks)}"
        if not lines[start].strip():
            more = next((n for n in range(start, len(lines)) if lines[n].strip()), None)
            if more is None:
                break
            raise DataError(f"{where}: blank line {start + 1} before more data at line {more + 1}; "
                            "remove it (each XYZ frame starts with its atom count)")
        try:
            n_atoms = int(lines[start])
        except ValueError:
            raise DataError(f"{where}: line {start + 1} should be the frame's atom count, found "
                            f"{lines[start].strip()[:50]!r}; is this an (extended) XYZ file?") from None
        end = start + 2 + n_atoms
        if n_atoms < 0 or end > len(lines):
            raise DataError(f"{where}: line {start + 1} announces {n_atoms} atoms but only "
                            f"{max(len(lines) - start - 2, 0)} lines follow; the file is truncated")
        chunks.append((len(chunks), start, end))
        start = end
    frames = []
    for index, start, end in select(chunks):
        where = f"{path}, frame {index}"
        columns = _declared_columns(lines[start + 1])
        for number in range(start + 2, end):
            if columns is not None and len(lines[number].split()) != columns:
                raise DataError(f"{where}: line {number + 1} has {len(lines[number].split())} values but "
                                f"the Properties of the comment line declare {columns} per atom; fix the "
                                "line or the Properties= entry")
        try:
            atoms = next(read_extxyz(io.StringIO("".join(lines[start:end])), index=0))
        except KeyError as exc:
            raise DataError(f"{where}, field 'species': unknown element symbol {exc} "
                            f"(lines {start + 3}-{end}); use element symbols such as H, C, O") from None
        except Exception as exc:  # ASE raises many types for malformed text; all mean the same here
            raise DataError(f"{where}: cannot parse extended XYZ at lines {start + 1}-{end} "
                            f"({type(exc).__name__}: {exc}); fix the comment line or atom lines") from None
        frames.append(_from_atoms(atoms, str(path), index, energy_key, forces_key))
    return frames


def _declared_columns(comment: str) -> Optional[int]:
    """Values per atom line that Properties= declares (4 without it); None if it cannot be read."""
    match = re.search(r"(?:^|\s)Properties=[\"']?([^\s\"']+)", comment)
    if match is None:
        return 4
    fields = match.group(1).split(":")
    if len(fields) % 3 or not all(n.isdigit() for n in fields[2::3]):
        return None  # malformed: ASE's parser reports it
    return sum(int(n) for n in fields[2::3])


def _from_atoms(atoms, file: str, index: int, energy_key: str, forces_key: str) -> _RawFrame:
    """Raw values as written: info/arrays first, then what ASE moved into a SinglePointCalculator."""
    results = atoms.calc.results if atoms.calc is not None else {}
    energy = atoms.info.get(energy_key, results.get(energy_key))
    forces = atoms.arrays.get(forces_key, results.get(forces_key))
    info = sorted(set(atoms.info) | {k for k, v in results.items() if np.ndim(v) <= 1})
    arrays = sorted((set(atoms.arrays) - {"numbers", "positions"})
                    | {k for k, v in results.items() if np.ndim(v) == 2})
    found = (f"comment-line keys: {', '.join(info) or 'none'}; per-atom properties: "
             f"{', '.join(arrays) or 'none'}")
    return _RawFrame(file, index, atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc,
                     energy, forces, energy_key, forces_key, found, renamable=True)


# ---------------------------------------------------------------- DeePMD

def _read_deepmd(path: Path, energy_key: str, forces_key: str, select) -> list:
    """A DeePMD system folder, or a folder holding several (every folder with a type.raw, sorted)."""
    if not path.is_dir():
        raise DataError(f"{path}: DeePMD data is a folder (type.raw, type_map.raw, set.*/coord.npy); "
                        "pass the folder, or fmt= for another format")
    systems = [path] if (path / "type.raw").is_file() else sorted(p.parent for p in path.rglob("type.raw"))
    if not systems:
        raise DataError(f"{path}: no DeePMD system found (no type.raw in it or below); a system folder "
                        "holds type.raw, type_map.raw and set.*/coord.npy")
    frames = []
    for system in systems:
        frames.extend(_read_deepmd_system(system))
    return select(frames)


def _read_deepmd_system(system: Path) -> list:
    types = _load_text(system / "type.raw", np.int64)
    type_map_file = system / "type_map.raw"
    if not type_map_file.is_file():
        raise DataError(f"{type_map_file}: file not found; ffkit needs the element of each DeePMD type: "
                        "write type_map.raw with one element symbol per line, in type order (e.g. O, H)")
    symbols = type_map_file.read_text().split()
    for line, symbol in enumerate(symbols, start=1):
        if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
            raise DataError(f"{type_map_file}, line {line}: unknown element symbol {symbol!r}; "
                            "use element symbols such as H, C, O")
    if types.size and (types.min() < 0 or types.max() >= len(symbols)):
        atom = int(np.flatnonzero((types < 0) | (types >= len(symbols)))[0])
        raise DataError(f"{system / 'type.raw'}, atom {atom}: type {types[atom]} but type_map.raw "
                        f"lists {len(symbols)} elements ({', '.join(symbols)}); add the missing element")
    numbers = np.array([atomic_numbers[s] for s in symbols], dtype=np.int64)[types]
    periodic = not (system / "nopbc").exists()
    sets = sorted(d for d in system.glob("set.*") if d.is_dir())
    if not sets:
        raise DataError(f"{system}: DeePMD system without set.* folders; the frames live in set.000/coord.npy etc.")
    frames = []
    for set_dir in sets:
        coord = _load_npy(set_dir / "coord.npy", required=True)
        n_frames = len(coord)
        box = _load_npy(set_dir / "box.npy", required=periodic)
        energy = _load_npy(set_dir / "energy.npy", required=False)
        force = _load_npy(set_dir / "force.npy", required=False)
        coord, box, energy, force = (
            None if array is None else _per_frame(array, set_dir / f"{name}.npy", n_frames)
            for array, name in ((coord, "coord"), (box, "box"), (energy, "energy"), (force, "force")))
        if box is None:
            box = np.zeros((n_frames, 9))
        found = "files there: " + ", ".join(sorted(p.name for p in set_dir.iterdir()))
        for k in range(n_frames):
            frames.append(_RawFrame(
                str(set_dir), k, numbers, _rows(coord[k]), box[k], np.full(3, periodic),
                None if energy is None else energy[k], None if force is None else _rows(force[k]),
                "energy.npy", "force.npy", found, renamable=False))
    return frames


def _load_text(path: Path, dtype) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return np.loadtxt(path, dtype=dtype, ndmin=1)
    except ValueError as exc:
        raise DataError(f"{path}: cannot parse ({exc}); it should hold one integer type per atom") from None


def _load_npy(path: Path, required: bool) -> Optional[np.ndarray]:
    if not path.is_file():
        if required:
            raise DataError(f"{path}: file not found; a periodic DeePMD set needs coord.npy and box.npy "
                            "(add an empty file named nopbc to the system folder if it is not periodic)")
        return None
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from None


def _per_frame(array: np.ndarray, path: Path, n_frames: int) -> np.ndarray:
    """(n_frames, values) with each frame flattened; refuses a frame count that differs from coord.npy."""
    if array.ndim == 0 or len(array) != n_frames:
        raise DataError(f"{path}: shape {array.shape} but coord.npy has {n_frames} frames; "
                        "all arrays of a set must have one row per frame")
    return array.reshape(n_frames, -1)


def _rows(values: np.ndarray) -> np.ndarray:
    """Flat xyz values as (atoms, 3) rows; left flat when not a multiple of 3 (the shape check reports it)."""
    return values.reshape(-1, 3) if values.size % 3 == 0 else values


# ---------------------------------------------------------------- npz (rMD17 style)

def _read_npz(path: Path, energy_key: str, forces_key: str, select) -> list:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    found = "arrays in the file: " + ", ".join(sorted(arrays))

    def first(names: Sequence[str], what: str, required: bool):
        for name in names:
            if name in arrays:
                return name
        if required:
            raise DataError(f"{path}: no {what} array (looked for {', '.join(names)}); {found}")
        return None

    r_key = first(("R", "coords"), "positions", True)
    z_key = first(("z", "nuclear_charges"), "atomic numbers", True)
    e_key = first((energy_key, "E", "energies"), "energy", False)
    f_key = first((forces_key, "F", "forces"), "forces", False)
    positions = arrays[r_key][None] if arrays[r_key].ndim == 2 else arrays[r_key]
    if positions.ndim != 3:
        raise DataError(f"{path}, field '{r_key}': shape {arrays[r_key].shape}, expected (frames, atoms, 3)")
    n_frames = len(positions)
    numbers = arrays[z_key]
    if numbers.ndim != 1:
        raise DataError(f"{path}, field '{z_key}': shape {numbers.shape}, expected (atoms,)")
    energy = None if e_key is None else np.atleast_1d(arrays[e_key])
    forces = None if f_key is None else arrays[f_key]
    if forces is not None and forces.ndim == 2:
        forces = forces[None]
    for key, values in ((e_key, energy), (f_key, forces)):
        if values is not None and len(values) != n_frames:
            raise DataError(f"{path}, field '{key}': {len(values)} frames but '{r_key}' has {n_frames}")
    return select([_RawFrame(str(path), k, numbers, positions[k], np.zeros((3, 3)), np.zeros(3, bool),
                             None if energy is None else energy[k], None if forces is None else forces[k],
                             e_key or energy_key, f_key or forces_key, found, renamable=True)
                   for k in range(n_frames)])


# ---------------------------------------------------------------- whole data sets

def split_frames(frames: Sequence[Frame], n_valid: Union[int, float] = 0.1, seed: int = 0) -> tuple:
    """Seeded random (train, valid) split; `n_valid` is a frame count (int) or a fraction (float < 1).

    Both parts keep the original frame order.
    """
    total = len(frames)
    if isinstance(n_valid, float) and 0.0 < n_valid < 1.0:
        count = max(1, int(round(n_valid * total)))
    elif isinstance(n_valid, (int, np.integer)) and not isinstance(n_valid, bool) and n_valid >= 0:
        count = int(n_valid)
    else:
        raise DataError(f"n_valid={n_valid!r}: give a number of frames (int >= 0) or a fraction in (0, 1)")
    if count >= total:
        raise DataError(f"cannot hold out {count} validation frames from {total}: nothing would be left "
                        "to train on; lower n_valid or give a separate validation file")
    chosen = np.zeros(total, dtype=bool)
    chosen[np.random.default_rng(seed).permutation(total)[:count]] = True
    train = [f for f, c in zip(frames, chosen) if not c]
    valid = [f for f, c in zip(frames, chosen) if c]
    return train, valid


def dataset_hash(frames: Sequence[Frame]) -> str:
    """sha256 over numbers, positions, cell, pbc, energy and forces of every frame, in order."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(np.int64(frame.n_atoms).tobytes())
        digest.update(np.ascontiguousarray(frame.numbers, dtype="<i8").tobytes())
        for values in (frame.positions, frame.cell, frame.pbc.astype(np.float64)):
            digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
        for values in (frame.energy, frame.forces):
            digest.update(b"-" if values is None else np.ascontiguousarray(values, dtype="<f8").tobytes())
    return digest.hexdigest()


def write_extxyz(frames, path) -> None:
    """Frames (eV, Å) as extended XYZ with `energy` and `forces`, readable by read_frames defaults."""
    from ase.io import write

    images = []
    for f in frames:
        atoms = f.to_atoms()
        atoms.info["energy"] = f.energy
        atoms.arrays["forces"] = f.forces
        images.append(atoms)
    write(path, images, format="extxyz")
