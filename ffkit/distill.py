"""`ffkit distill`: teach a cheap tier from an accurate model (the teacher).

An accurate artifact labels as many configurations as we like at MD cost. The teacher runs NVT MD
in LAMMPS at several temperatures from the QM training frames (the labels are the energies and
forces LAMMPS computed in that run), and labels rattled and strained copies of the QM frames from
Python. A teacher that LAMMPS does not run (a committee of message-passing models, an expensive
ensemble) names a `sampler`: a LAMMPS artifact whose MD draws the frames, which the teacher then
labels from Python. The student trains on those frames together with the QM frames (repeated `qm_weight` times:
QM is the ground truth, the teacher an approximation of it), and is validated on held-out QM frames
only. A committee teacher's force spread drops frames where the teacher itself is unsure.

Everything lands in the run folder, and each stage is skipped when its output exists, so
`--resume` after an interruption goes on where it stopped:

    RUN/plan.json          what was asked (a rerun with another plan is refused)
    RUN/md/T<K>_<k>/       the teacher's LAMMPS runs (samples.npz when finished)
    RUN/data/train.xyz     QM training frames x qm_weight + teacher frames; valid.xyz: QM only
    RUN/student/           the student's training run (ffkit train)
    RUN/student.pt         the student's artifact, proven in LAMMPS; metadata "provenance"
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .errors import FFKitError


@dataclass
class DistillPlan:
    teacher: str
    data: str
    tier: str = "fast"
    temperatures: Sequence[float] = (300.0, 600.0, 900.0)
    md_frames: int = 5000          # teacher MD frames in all, split over temperatures and starts
    starts: int = 4                # MD runs per temperature, each from another QM frame
    every: int = 20                # MD steps between kept frames (0.5 fs steps)
    rattled: int = 500             # rattled or strained QM frames, labelled by the teacher
    rattle_A: float = 0.05         # Gaussian displacement per coordinate (Å)
    strain: float = 0.03           # largest uniform strain of strained frames
    qm_weight: int = 3             # each QM training frame appears this many times
    max_spread: Optional[float] = None  # eV/Å: drop frames where a committee teacher's spread is larger
    sampler: Optional[str] = None  # LAMMPS artifact whose MD draws the frames the teacher labels (default: the teacher)
    n_valid: int = 50              # QM frames held out for validation
    seed: int = 0

    def __post_init__(self) -> None:
        for name, least in (("md_frames", 0), ("rattled", 0), ("starts", 1), ("every", 1), ("qm_weight", 1),
                            ("n_valid", 1)):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= least):
                raise FFKitError(f"distill: {name} must be a whole number >= {least}, not {value!r}")
        if not self.temperatures or min(self.temperatures) <= 0:
            raise FFKitError(f"distill: temperatures must be positive kelvin, not {list(self.temperatures)}")
        if self.rattle_A < 0 or not 0 <= self.strain < 0.5:
            raise FFKitError(f"distill: rattle_A must be >= 0 Å and strain in [0, 0.5), not {self.rattle_A!r} and "
                             f"{self.strain!r}")


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _frame(template, positions, energy, forces, source):
    from .datasets import Frame

    return Frame(numbers=np.asarray(template.numbers), positions=np.asarray(positions, dtype=np.float64),
                 cell=np.asarray(template.cell, dtype=np.float64), pbc=np.asarray(template.pbc), energy=float(energy),
                 forces=np.asarray(forces, dtype=np.float64), source=source)


def label(teacher, positions, template) -> Dict[str, np.ndarray]:
    """The teacher's energies, forces and force spreads (committees; else 0) of `positions` from Python."""
    from .calculator import FFKitCalculator

    calc = FFKitCalculator(teacher)
    out: Dict[str, list] = {"energies": [], "forces": [], "spread": []}
    for x in positions:
        atoms = template.to_atoms()
        atoms.positions = x
        atoms.calc = calc
        out["energies"].append(atoms.get_potential_energy())
        out["forces"].append(atoms.get_forces())
        out["spread"].append(calc.results.get("max_force_std", 0.0))
    return {k: np.asarray(v) for k, v in out.items()}


def teacher_md(teacher, start, work: Path, symbols: List[str], *, sampler=None, committee: bool = False,
               **md) -> Dict[str, np.ndarray]:
    """MD from the frame `start` in LAMMPS (`md`: temperature, steps, every, seed) with the teacher, or with
    `sampler` and then labelled by the teacher in Python: positions, energies, forces and, for a committee
    teacher, force spreads."""
    from .engines import engine

    s = engine("lammps", needs="sample_md").sample_md(sampler or teacher, start.to_atoms(), symbols, work,
                                                      committee=committee and not sampler, **md)
    if sampler:
        s = {"positions": s["positions"], **label(teacher, s["positions"], start)}
    return s


def sample_teacher(plan: DistillPlan, meta: Dict[str, Any], starts: List, run: Path, progress: bool) -> List:
    """The teacher's MD frames (energies and forces as LAMMPS computed them, or as the teacher labels the MD
    of `plan.sampler`) and their spreads."""
    from tqdm import tqdm

    committee = "committee" in meta
    runs = [(t, k) for t in plan.temperatures for k in range(plan.starts)]
    per_run = -(-plan.md_frames // len(runs)) if plan.md_frames else 0
    frames, spreads = [], []
    for t, k in tqdm(runs, desc="teacher MD", unit="run", disable=not progress or not per_run, dynamic_ncols=True):
        if not per_run:
            break
        work = run / "md" / f"T{t:g}_{k}"
        done = work / "samples.npz"
        start = starts[k % len(starts)]
        if not done.is_file():
            s = teacher_md(plan.teacher, start, work, meta["species_symbols"], sampler=plan.sampler,
                           committee=committee, temperature=t, steps=per_run * plan.every, every=plan.every,
                           seed=1000 + 100 * k + int(t) + 10_000 * plan.seed)
            np.savez(work / "partial.npz", positions=s["positions"], forces=s["forces"], energies=s["energies"],
                     spread=s["spread"] if committee else np.zeros(0))
            (work / "partial.npz").replace(done)
        s = np.load(done)
        frames += [_frame(start, x, e, f, f"teacher MD {t:g} K run {k} frame {i}")
                   for i, (x, e, f) in enumerate(zip(s["positions"], s["energies"], s["forces"]))]
        spreads += list(s["spread"]) if committee else [None] * len(s["energies"])
    return list(zip(frames, spreads))[: plan.md_frames]


def perturbed_frames(plan: DistillPlan, qm_train: List, progress: bool) -> List:
    """Rattled (half) and strained (half) copies of QM training frames, labelled by the teacher in Python."""
    from tqdm import tqdm

    from .calculator import FFKitCalculator

    rng = np.random.default_rng(plan.seed + 7)
    calc = FFKitCalculator(plan.teacher)
    out = []
    for n in tqdm(range(plan.rattled), desc="teacher labels", unit="frame", disable=not progress or not plan.rattled,
                  dynamic_ncols=True):
        base = qm_train[rng.integers(len(qm_train))]
        atoms = base.to_atoms()
        if n % 2 == 0:
            atoms.positions = atoms.positions + rng.normal(0.0, plan.rattle_A, atoms.positions.shape)
            how = f"rattled {plan.rattle_A:g} Å"
        else:
            factor = 1.0 + rng.uniform(-plan.strain, plan.strain)
            if atoms.pbc.any():
                atoms.set_cell(atoms.cell.array * factor, scale_atoms=True)
            else:
                centre = atoms.positions.mean(axis=0)
                atoms.positions = centre + (atoms.positions - centre) * factor
            how = f"strained {factor - 1:+.3f}"
        atoms.calc = calc
        try:
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        except FFKitError:
            continue  # rattled into an overlap the teacher refuses: not a configuration to learn
        spread = calc.results.get("max_force_std")
        out.append((_frame(atoms, atoms.positions, energy, forces, f"{base.where}, {how}"), spread))
    return out


def distill(plan: DistillPlan, out, *, epochs: Optional[int] = None, max_minutes: Optional[float] = None,
            dtype: str = "float32", threads: int = 1, progress: bool = True, resume: bool = False,
            read_options: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Sample and label with the teacher, train the student, write RUN/student.pt; the summary."""
    from .artifact import compile_model, read_metadata
    from .checkpoints import load_checkpoint
    from .config import TrainConfig
    from .datasets import read_frames, split_frames, write_extxyz
    from .engine_parity import unchecked, write_proven
    from .training import train

    run = Path(out)
    meta = read_metadata(plan.teacher)
    if meta.get("engine") != "lammps":
        raise FFKitError(f"{plan.teacher}: a {meta.get('engine')!r} artifact; the teacher runs in LAMMPS: give the "
                         "LAMMPS artifact (`ffkit compile CHECKPOINT --out teacher.pt`)")
    planned = {**asdict(plan), "temperatures": [float(t) for t in plan.temperatures],
               "teacher": str(Path(plan.teacher).resolve()), "teacher_sha256": _sha256(plan.teacher),
               "data": str(Path(plan.data).resolve()), "teacher_tier": meta.get("tier")}
    cannot_run = unchecked(meta)
    if cannot_run and not plan.sampler:
        raise FFKitError(f"{plan.teacher}: {cannot_run['reason'].split(';')[0]}; give --sampler, a LAMMPS artifact "
                         "whose MD draws the frames this teacher labels")
    if plan.sampler:
        sampler = read_metadata(plan.sampler)
        missing = sorted(set(meta["species_symbols"]) - set(sampler.get("species_symbols") or []))
        if sampler.get("engine") != "lammps" or missing:
            raise FFKitError(f"{plan.sampler}: the sampler runs the MD in LAMMPS, so it must be a LAMMPS artifact "
                             f"that knows the teacher's elements; it is a {sampler.get('engine')!r} artifact"
                             + (f" without {' '.join(missing)} (metadata 'species_symbols')" if missing else ""))
        planned.update(sampler=str(Path(plan.sampler).resolve()), sampler_sha256=_sha256(plan.sampler))
    else:
        del planned["sampler"]  # the plan of a run made before samplers existed still matches on --resume
    plan_file = run / "plan.json"
    if plan_file.is_file() and not resume:
        raise FFKitError(f"{run} already holds a distillation ({plan_file}); continue it with --resume or choose a "
                         "new --out")
    if plan_file.is_file() and json.loads(plan_file.read_text()) != planned:
        raise FFKitError(f"--resume: {plan_file} was made with other settings, teacher or data; resume with the "
                         "same ones or choose a new --out")
    qm = read_frames(plan.data, **(read_options or {}))
    known = set(meta["species"])
    unknown = sorted({int(z) for f in qm for z in f.numbers} - known)
    if unknown:
        raise FFKitError(f"{plan.data}: elements {unknown} (atomic numbers) are not in the teacher, which knows "
                         f"{' '.join(meta['species_symbols'])}")
    qm_train, qm_valid = split_frames(qm, plan.n_valid, seed=plan.seed)
    run.mkdir(parents=True, exist_ok=True)
    plan_file.write_text(json.dumps(planned, indent=1) + "\n")

    train_file, valid_file = run / "data" / "train.xyz", run / "data" / "valid.xyz"
    counts_file = run / "data" / "counts.json"
    if not counts_file.is_file():
        starts = [qm_train[i] for i in np.random.default_rng(plan.seed).permutation(len(qm_train))[: plan.starts]]
        labelled = sample_teacher(plan, meta, starts, run, progress) + perturbed_frames(plan, qm_train, progress)
        kept = [f for f, spread in labelled if plan.max_spread is None or spread is None or spread <= plan.max_spread]
        counts = {"qm_train": len(qm_train), "qm_valid": len(qm_valid), "qm_weight": plan.qm_weight,
                  "teacher_md": sum(1 for f, _ in labelled if f.source.startswith("teacher MD")),
                  "teacher_perturbed": sum(1 for f, _ in labelled if not f.source.startswith("teacher MD")),
                  "dropped_by_spread": len(labelled) - len(kept)}
        counts["training_frames"] = plan.qm_weight * len(qm_train) + len(kept)
        train_file.parent.mkdir(exist_ok=True)
        write_extxyz(qm_train * plan.qm_weight + kept, train_file)
        write_extxyz(qm_valid, valid_file)
        counts_file.write_text(json.dumps(counts, indent=1) + "\n")
    counts = json.loads(counts_file.read_text())

    student = run / "student"
    cfg = TrainConfig(data=str(train_file), valid=str(valid_file), out=str(student),
                      tier=plan.tier, epochs=epochs, max_minutes=max_minutes, dtype=dtype, seed=plan.seed,
                      threads=threads, progress=progress,
                      provenance={"kind": "ffkit distill", **{k: planned.get(k) for k in (
                          "teacher", "teacher_sha256", "teacher_tier", "sampler", "data", "temperatures", "every",
                          "rattle_A", "strain", "qm_weight", "max_spread")}, "frames": counts})
    summary = train(cfg, resume=(student / "last.pt").is_file())
    model, ckpt = load_checkpoint(student / "best.pt")
    artifact = run / "student.pt"
    write_proven(lambda draft: compile_model(model, draft, dtype=dtype, checkpoint=ckpt), artifact,
                 frame_file=str(valid_file), checkpoint=ckpt, model=model)
    return {**summary, "frames": counts, "artifact": str(artifact)}
