"""Run an ffkit artifact in the venv's real `lmp` (subprocess): MD for the demo and benchmarks, and
single points for `ffkit compile`'s engine parity.

Writes the data file and input script, runs `lmp` (optionally under `mpirun`), and reads back
the loop time and LAMMPS's own ns/day. The caller imports this, never LAMMPS internals.
"""

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def write_atomic_data(atoms, path: Path, elements: Sequence[str]) -> None:
    """atom_style atomic data file; LAMMPS type k+1 is elements[k]. Non-periodic cells get a box."""
    from ase.io import write

    write(path, atoms, format="lammps-data", specorder=list(elements), units="metal", masses=True,
          atom_style="atomic")


def md_script(model: Path, elements: Sequence[str], steps: int, timestep_fs: float, temperature: float,
              dump_every: int, thermo_every: int, seed: int = 4928459, thermostat: bool = False) -> str:
    """Velocities at `temperature`, then NVE, or with `thermostat` NVT (Nose-Hoover, 100 fs) at it."""
    integrator = f"fix md all nvt temp {temperature} {temperature} 0.1" if thermostat else "fix md all nve"
    return f"""units metal
atom_style atomic
boundary p p p
read_data data.lmp
pair_style ffkit
pair_coeff * * {model} {' '.join(elements)}
neighbor 1.0 bin
velocity all create {temperature} {seed} mom yes rot yes dist gaussian
{integrator}
timestep {timestep_fs / 1000.0}
thermo_style custom step time temp pe ke etotal press
thermo {thermo_every}
dump traj all custom {dump_every} traj.dump id type x y z fx fy fz
dump_modify traj format float %.10g sort id
run {steps}
"""


def run(workdir: Path, script: str, ranks: int = 1, threads: int = 1, lmp: Path | None = None) -> dict[str, float]:
    """Run `script` in `workdir` with the venv's lmp, or `lmp` (another LAMMPS, for a peer's own pair
    style), serial then (log in workdir/log.lammps), with `threads` OpenMP threads per rank (`-pk omp`:
    LAMMPS's neighbour lists are built with them too, and `pair_style ffkit` runs as many).

    Returns the last run's loop seconds, steps, atoms, ns/day, µs/atom/step and, when the script
    has `timer full`, the CPU share (%) of the Pair section (< 100: other processes competed).
    Raises RuntimeError with LAMMPS's ERROR lines when lmp fails.
    """
    workdir = Path(workdir)
    (workdir / "in.lmp").write_text(script)
    command = [str(lmp or VENV_BIN / "lmp"), "-in", "in.lmp", "-log", "log.lammps", "-nocite"]
    if ranks > 1 and lmp is not None:
        raise ValueError(f"{lmp}: another LAMMPS runs serial here (mpirun is this venv's)")
    if threads > 1:
        command += ["-pk", "omp", str(threads)]
    if ranks > 1:
        command = [str(VENV_BIN / "mpirun"), "-np", str(ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), FFKIT_NUM_THREADS=str(threads))
    out = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        errors: list[str] = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
        raise RuntimeError(f"lmp failed in {workdir}: {' '.join(errors) or out.stdout[-2000:]} {out.stderr[-1000:]}")
    loops = re.findall(r"Loop time of ([\d.e+-]+) on \d+ procs for (\d+) steps with (\d+) atoms", out.stdout)
    perf = re.findall(r"Performance: ([\d.e+-]+) ns/day", out.stdout)
    cpu = re.findall(r"^Pair\s*\|(?:[^|]*\|){4}\s*([\d.]+)\s*\|", out.stdout, flags=re.MULTILINE)
    seconds, steps, atoms = loops[-1]
    return {"seconds": float(seconds), "steps": int(steps), "atoms": int(atoms),
            "ns_per_day": float(perf[-1]) if perf else float("nan"),
            "us_per_atom_step": 1e6 * float(seconds) / (int(steps) * int(atoms)) if int(steps) else float("nan"),
            "cpu_percent": float(cpu[-1]) if cpu else None}


def run_nve(model: Path, atoms, elements: Sequence[str], workdir: Path, steps: int = 2000,
            timestep_fs: float = 0.5, temperature: float = 300.0, dump_every: int = 20,
            thermo_every: int | None = None, ranks: int = 1) -> dict[str, float]:
    """NVE MD of `atoms` with artifact `model`; leaves data.lmp, log.lammps, traj.dump in `workdir`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_atomic_data(atoms, workdir / "data.lmp", elements)
    script = md_script(Path(model).resolve(), elements, steps, timestep_fs, temperature, dump_every,
                        thermo_every or dump_every)
    return run(workdir, script, ranks=ranks)


def boxed(atoms):
    """A copy of `atoms`; a molecule (no periodicity) gets a periodic box 40 Å wider than itself, so no
    periodic image comes within any model's reach."""
    import numpy as np

    atoms = atoms.copy()
    if not atoms.pbc.any():
        atoms.set_cell([np.ptp(atoms.positions, axis=0).max() + 40.0] * 3)
        atoms.center()
        atoms.pbc = True
    return atoms


# single points and sampling: the data file of write_atomic_data, the artifact as pair_style ffkit
READ_MODEL = """units metal
atom_style atomic
boundary p p p
read_data data.lmp
pair_style ffkit
pair_coeff * * {model} {elements}
"""

SINGLE_POINT = READ_MODEL + """dump forces all custom 1 forces.dump id fx fy fz
dump_modify forces format float %.17g sort id
run 0
print "FFKIT_ENERGY $(pe:%.17g)"
"""


def single_point(model: Path, atoms, elements: Sequence[str], workdir: Path):
    """Energy (eV) and forces (eV/Å, in the order and frame of `atoms`) of `atoms` from `lmp` `run 0`.

    A molecule sits in a box (`boxed`). A triclinic cell is rotated into LAMMPS's convention by
    the data writer, so the forces are rotated back.
    """
    import numpy as np
    from ase.calculators.lammps import Prism

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    atoms = boxed(atoms)
    write_atomic_data(atoms, workdir / "data.lmp", elements)
    run(workdir, SINGLE_POINT.format(model=Path(model).resolve(), elements=" ".join(elements)))
    energy = float(re.findall(r"^FFKIT_ENERGY (\S+)$", (workdir / "log.lammps").read_text(), flags=re.MULTILINE)[-1])
    rows = (workdir / "forces.dump").read_text().split("ITEM: ATOMS id fx fy fz\n")[-1].split()
    forces = np.array(rows, dtype=float).reshape(-1, 4)[:, 1:]
    return energy, Prism(atoms.cell.array).vector_to_ase(forces)


SAMPLE = READ_MODEL + """{spread}neighbor 1.0 bin
velocity all create {temperature} {seed} mom yes rot yes dist gaussian
fix md all nvt temp {temperature} {temperature} 0.05
timestep {timestep_ps}
thermo_style custom step pe{spread_column}
thermo_modify format float %.17g
thermo {every}
dump frames all custom {every} frames.dump id xu yu zu fx fy fz
dump_modify frames format float %.17g sort id
run {steps}
"""


def sample_md(model: Path, atoms, elements: Sequence[str], workdir: Path, temperature: float, steps: int,
              every: int, timestep_fs: float = 0.5, seed: int = 4928459, committee: bool = False) -> dict:
    """NVT MD (Nose-Hoover, 50 fs) of `atoms` with artifact `model` at `temperature`, keeping every
    `every`-th step after the first: positions (unwrapped, Å), forces (eV/Å) and energies (eV) as the
    model computed them in the run (no second evaluation), and for a committee the largest spread of
    its members' forces on any atom (eV/Å). A molecule sits in a box (`boxed`)."""
    import numpy as np
    from ase.calculators.lammps import Prism

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    atoms = boxed(atoms)
    write_atomic_data(atoms, workdir / "data.lmp", elements)
    script = SAMPLE.format(model=Path(model).resolve(), elements=" ".join(elements), temperature=temperature,
                           seed=seed, timestep_ps=timestep_fs / 1000.0, every=every, steps=steps,
                           spread="compute spread all pair ffkit\n" if committee else "",
                           spread_column=" c_spread[1]" if committee else "")
    run(workdir, script)
    log = (workdir / "log.lammps").read_text()
    table = log[log.index("\n   Step ") if "\n   Step " in log else log.index("\nStep "):log.index("\nLoop time")]
    thermo = {int(row[0]): (float(row[1]), float(row[2]) if committee else None)
              for row in (line.split() for line in table.splitlines()[2:]) if row}
    frames = (workdir / "frames.dump").read_text().split("ITEM: TIMESTEP\n")[1:]
    n = len(atoms)
    steps_kept, positions, forces = [], [], []
    for block in frames:
        step = int(block.split("\n", 1)[0])
        if step == 0:
            continue  # the starting structure, not sampled by the model
        table = np.array(block.split("ITEM: ATOMS id xu yu zu fx fy fz\n")[1].split(), dtype=float).reshape(n, 7)
        steps_kept.append(step)
        positions.append(table[:, 1:4])
        forces.append(table[:, 4:7])
    prism = Prism(atoms.cell.array)  # a triclinic cell was rotated into LAMMPS's convention: rotate back
    positions = [prism.vector_to_ase(x) for x in positions]
    forces = [prism.vector_to_ase(f) for f in forces]
    return {"steps": steps_kept, "positions": np.array(positions), "forces": np.array(forces),
            "energies": np.array([thermo[s][0] for s in steps_kept]),
            "spread": np.array([thermo[s][1] for s in steps_kept]) if committee else None}

