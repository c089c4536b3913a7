"""Speed inside LAMMPS: the SPC/E anchor, `pair_style ffkit` cases, interleaved medians.

Timings on a shared machine are only comparable when every case meets the same load, so cases
are timed in turn, `repeats` times, after one calibration run each (a step count giving about
`target_seconds` of measured loop), and the median is kept. Cost is wall time of the whole MD
step: µs per atom per step, and ns/day at the case's time step. The MM anchor is SPC/E water
(`lj/cut/coul/long` 10 Å + PPPM 1e-4, SHAKE, 2 fs) — what a classical run of the same size costs.

Used by `ffkit bench` and benchmarks/lammps_speed.py; `lmp` runs as a subprocess (md.run). The boxes
themselves are ffkit.boxes'.
"""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ffkit.boxes import is_water, spce_water
from ffkit.errors import FFKitError

from .md import run, write_atomic_data

TARGET_SECONDS = 4.0  # measured loop per case and repeat
SPCE_CHARGES = {8: -0.8476, 1: 0.4238}

MM_SCRIPT = """units real
atom_style full
read_data {data}
pair_style lj/cut/coul/long 10.0
pair_coeff 1 1 0.15535 3.166
pair_coeff * 2 0.0 1.0
bond_style harmonic
bond_coeff 1 1000.0 1.0
angle_style harmonic
angle_coeff 1 100.0 109.47
kspace_style pppm 1.0e-4
neighbor 2.0 bin
neigh_modify every 1 delay 0 check yes
velocity all create 300 4928459 loop geom
fix shake all shake 1e-4 20 0 b 1 a 1
fix nve all nve
timestep 2.0
thermo 1000
timer full
"""

ML_SCRIPT = """units metal
atom_style atomic
read_data {data}
{pair}
neighbor 1.0 bin
velocity all create 300 4928459 loop geom
fix nve all nve
timestep 0.0005
thermo 1000
timer full
"""


@dataclass
class LammpsCase:
    """One MD set-up to time: `setup` is a LAMMPS input without its run lines; files go in `workdir`.

    `steps` = 0 until calibrated; `info` is copied into the case's record (e.g. tier, dtype).
    """

    name: str
    setup: str
    workdir: Path
    timestep_fs: float
    ranks: int = 1
    threads: int = 1  # OpenMP threads per rank (md.run)
    warmup: int = 2
    steps: int = 0
    info: dict = field(default_factory=dict)
    lmp: Path | None = None  # another LAMMPS executable (a peer's); None: this venv's

    def measure(self) -> dict:
        """One timed run: a warm-up run, then `steps` measured steps."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        result = run(self.workdir, f"{self.setup}run {self.warmup}\nrun {self.steps}\n", ranks=self.ranks,
                     threads=self.threads, lmp=self.lmp)
        return {"seconds_per_step": result["seconds"] / result["steps"], "atoms": result["atoms"],
                "steps": result["steps"], "cpu_percent": result["cpu_percent"]}

    def calibrate(self, target_seconds: float = TARGET_SECONDS) -> None:
        per_step = replace(self, warmup=1, steps=1).measure()["seconds_per_step"]
        self.steps = int(min(max(3, target_seconds / per_step), 2000))


def mm_anchor(data: Path, workdir: Path, ranks: int = 1) -> LammpsCase:
    """The SPC/E + PPPM case on a data file from write_spce_data."""
    return LammpsCase("mm-anchor", MM_SCRIPT.format(data=Path(data).resolve()), Path(workdir), 2.0, ranks=ranks,
                      warmup=10)


def ml_case(name: str, data: Path, model: Path, elements: Sequence[str], workdir: Path, ranks: int = 1,
            threads: int = 1, path: str = "auto", **info) -> LammpsCase:
    """NVE with `pair_style ffkit` (0.5 fs, `threads` OpenMP threads per rank for the style and LAMMPS's
    neighbour lists, evaluation `path` auto, kernel or torchscript); LAMMPS type k+1 of `data` is elements[k]."""
    pair = (f"pair_style ffkit path {path}\n"
            f"pair_coeff * * {Path(model).resolve()} {' '.join(elements)}")
    return replace(pair_case(name, data, pair, workdir, ranks=ranks, **info), threads=threads)


def pair_case(name: str, data: Path, pair: str, workdir: Path, ranks: int = 1, lmp: Path | None = None,
              **info) -> LammpsCase:
    """The same NVE run with any pair style (`pair`: its pair_style and pair_coeff lines), in this venv's
    LAMMPS or in `lmp`, another one (a peer's own pair style in the peer's environment)."""
    setup = ML_SCRIPT.format(data=Path(data).resolve(), pair=pair)
    return LammpsCase(name, setup, Path(workdir), 0.5, ranks=ranks, info=info, lmp=lmp)


def time_cases(cases: Sequence, repeats: int, target_seconds: float = TARGET_SECONDS,
               progress: bool = True) -> list[dict]:
    """Calibrate the cases with no step count, then time all of them in turn `repeats` times.

    A case is anything with name, ranks, timestep_fs (None: not MD), steps, info, calibrate(target)
    and measure() -> {seconds_per_step, atoms, steps, cpu_percent}. Returns one record per case
    (median over repeats): case, ranks, atoms, us_per_atom_step, ns_per_day, timestep_fs, steps,
    repeats, cpu_percent, and the case's info.
    """
    from tqdm import tqdm

    todo = [case for case in cases if not case.steps]
    bar = tqdm(total=len(todo) + repeats * len(cases), unit="run", disable=not progress, dynamic_ncols=True)
    for case in todo:
        bar.set_description(f"calibrate {case.name} ({case.ranks} rank)")
        case.calibrate(target_seconds)
        bar.update(1)
    timings: list[list[dict]] = [[] for _ in cases]
    for repeat in range(repeats):
        for case, times in zip(cases, timings):
            bar.set_description(f"time {case.name} ({case.ranks} rank), repeat {repeat + 1}/{repeats}")
            times.append(case.measure())
            bar.set_postfix_str(f"{times[-1]['seconds_per_step'] * 1e3:.3g} ms/step")
            bar.update(1)
    bar.close()
    return [summarise(case, times) for case, times in zip(cases, timings)]


def summarise(case, timings: Sequence[dict]) -> dict:
    seconds = statistics.median(t["seconds_per_step"] for t in timings)
    atoms = timings[0]["atoms"]
    cpu = [t["cpu_percent"] for t in timings if t["cpu_percent"] is not None]
    timestep = case.timestep_fs
    return {"case": case.name, "ranks": case.ranks, "atoms": atoms, "us_per_atom_step": seconds / atoms * 1e6,
            "ns_per_day": timestep * 1e-6 * 86400.0 / seconds if timestep else None, "timestep_fs": timestep,
            "steps": timings[0]["steps"], "repeats": len(timings),
            "cpu_percent": statistics.median(cpu) if cpu else None, **case.info}


def add_ratios(records: Sequence[dict], anchor: dict) -> None:
    """ratio_to_mm = cost / the anchor's cost, per atom and step."""
    for record in records:
        record["ratio_to_mm"] = record["us_per_atom_step"] / anchor["us_per_atom_step"]


def write_spce_data(atoms, path: Path) -> None:
    """atom_style full data file: each O with its two nearest H (minimum image) as one SPC/E molecule.

    Needs an orthorhombic cell; raises ValueError when an oxygen does not own exactly two hydrogens.
    """
    o_index = np.where(atoms.numbers == 8)[0]
    h_index = np.where(atoms.numbers == 1)[0]
    cell = atoms.cell.lengths()
    delta = atoms.positions[h_index][None, :, :] - atoms.positions[o_index][:, None, :]
    delta -= cell * np.round(delta / cell)
    dist = np.linalg.norm(delta, axis=2)
    owner = np.argmin(dist, axis=0)  # each H to its nearest O
    counts = np.bincount(owner, minlength=len(o_index))
    if not (counts == 2).all():
        raise ValueError(f"water box: {np.sum(counts != 2)} oxygens do not own exactly two hydrogens")
    lines, bonds, angles, atom_id = [], [], [], 0
    for mol, o in enumerate(o_index):
        hs = h_index[owner == mol]
        ids = []
        for k, (a, typ) in enumerate([(o, 1), (hs[0], 2), (hs[1], 2)]):
            atom_id += 1
            ids.append(atom_id)
            x, y, z = atoms.positions[a] if k == 0 else atoms.positions[o] + delta[mol, np.where(h_index == a)[0][0]]
            lines.append(f"{atom_id} {mol + 1} {typ} {SPCE_CHARGES[atoms.numbers[a]]} {x:.10f} {y:.10f} {z:.10f}")
        bonds += [(ids[0], ids[1]), (ids[0], ids[2])]
        angles.append((ids[1], ids[0], ids[2]))
    text = [f"SPC/E water ({len(o_index)} molecules)\n\n{atom_id} atoms\n{len(bonds)} bonds\n{len(angles)} angles\n",
            "2 atom types\n1 bond types\n1 angle types\n",
            f"0 {cell[0]} xlo xhi\n0 {cell[1]} ylo yhi\n0 {cell[2]} zlo zhi\n",
            "Masses\n\n1 15.9994\n2 1.008\n", "Atoms # full\n\n" + "\n".join(lines) + "\n",
            "Bonds\n\n" + "\n".join(f"{k + 1} 1 {a} {b}" for k, (a, b) in enumerate(bonds)) + "\n",
            "Angles\n\n" + "\n".join(f"{k + 1} 1 {a} {b} {c}" for k, (a, b, c) in enumerate(angles)) + "\n"]
    Path(path).write_text("\n".join(text))


def time_models(models, system, work: Path, repeats: int, steps, progress: bool, torchscript_also=()):
    """`ffkit bench`'s timing: each (label, artifact, metadata) of `models` with `pair_style ffkit` on
    `system`, interleaved with the SPC/E anchor. Returns the anchor's record, one record per model
    (µs/atom/step, ns/day, ratio_to_mm) and a sentence saying what the anchor ran on. The models
    labelled in `torchscript_also` are timed on `path torchscript` as well, in the same rounds; their
    records carry it as torchscript_us_per_atom_step."""
    from ase.data import chemical_symbols

    lammps = work / "lammps"
    lammps.mkdir(parents=True, exist_ok=True)
    elements = [chemical_symbols[z] for z in sorted(set(system.numbers.tolist()))]
    write_atomic_data(system, lammps / "system.data", elements)
    if is_water(system) and system.cell.orthorhombic:
        water, note = system, f"SPC/E on the same water box ({len(system)} atoms)"
    else:
        water = spce_water(len(system))
        note = (f"SPC/E water packed at 0.997 g/cm³ ({len(water)} atoms), standing in for the MM force field of "
                "these data at the same atom count")
    write_spce_data(water, lammps / "spce.data")
    cases = [mm_anchor(lammps / "spce.data", lammps / "mm-anchor")]
    cases += [ml_case(f"ffkit {label}", lammps / "system.data", path, elements, lammps / label, tier=label)
              for label, path, _ in models]
    also = [label for label, _, _ in models if label in torchscript_also]
    cases += [ml_case(f"ffkit {label} torchscript", lammps / "system.data", path, elements,
                      lammps / f"{label}_torchscript", path="torchscript")
              for label, path, _ in models if label in torchscript_also]
    for case in cases:
        case.steps = steps or 0
    try:
        records = time_cases(cases, repeats, progress=progress)
    except RuntimeError as exc:
        raise FFKitError(f"a timing run failed ({exc}); its input and log.lammps are in that folder; "
                         "a model that blows up in the box makes LAMMPS lose atoms") from None
    add_ratios(records, records[0])
    timings = records[1:1 + len(models)]
    by_label = {label: record for (label, _, _), record in zip(models, timings)}
    for label, record in zip(also, records[1 + len(models):]):
        by_label[label]["torchscript_us_per_atom_step"] = record["us_per_atom_step"]
    return records[0], timings, note

