"""`ffkit validate`: is a trajectory physically right? Exit 0 when every check passes, 1 when one
fails (so it can gate a pipeline), 2 on unusable input."""

from __future__ import annotations

import argparse
from pathlib import Path

from .loading import ValidationInputError

EPILOG = """examples:
  ffkit validate water.data traj.dump --log log.lammps --report out/
  ffkit validate traj.dump traj.dump --elements O H --units metal --timestep 0.5
  ffkit validate topol.tpr traj.trr --edr ener.edr --model model.pt
  ffkit validate run.data run.dump --log log.lammps --reference train.extxyz --config checks.yaml
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "validate", help="physical checks of an MD trajectory (MDAnalysis), report + exit status",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("topology", help="LAMMPS data/dump, GROMACS tpr/gro, or extxyz")
    p.add_argument("trajectory", nargs="?", help="LAMMPS dump/DCD/XTC, GROMACS xtc/trr, extxyz "
                   "(default: the topology file itself)")
    energy = p.add_mutually_exclusive_group()
    energy.add_argument("--log", help="LAMMPS log: thermo energies, units and time step")
    energy.add_argument("--edr", help="GROMACS energy file (needs the pyedr package)")
    p.add_argument("--reference", nargs="+", metavar="REF",
                   help="reference structure to compare with: an extxyz file (e.g. the training "
                        "frames) or TOPOLOGY TRAJECTORY of another run")
    p.add_argument("--model", help="ffkit artifact (.pt): re-evaluate frames and compare forces")
    p.add_argument("--config", help="checks.yaml with thresholds (sections: energy, stability, "
                                    "structure, comparison, parity, run)")
    p.add_argument("--report", default="validate_report", help="output directory (default: %(default)s)")
    p.add_argument("--elements", nargs="+", metavar="EL",
                   help="element of each LAMMPS atom type, in type order (e.g. --elements O H)")
    p.add_argument("--units", choices=["metal", "real"],
                   help="LAMMPS units style of the dump (default: read from --log)")
    p.add_argument("--timestep", type=float, metavar="FS",
                   help="MD time step in fs, for LAMMPS dump times (default: read from --log)")
    p.add_argument("--atom-style", help="LAMMPS data file atom_style when the file does not name it")
    p.add_argument("--target-temperature", type=float, metavar="K",
                   help="expected mean temperature (overrides energy.target_temperature_K)")
    p.add_argument("--step", type=int, help="analyse every STEP-th frame (overrides run.step)")
    p.add_argument("--workers", type=int,
                   help="frame-parallel analyses with MDAnalysis's multiprocessing backend")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .checks import load_config, validate
    from .energy import energy_series_from_edr, energy_series_from_lammps_log, read_lammps_log
    from .loading import lammps_unit_factors, load_run
    from .report import write_report

    config = load_config(args.config)
    if args.target_temperature is not None:
        config.energy.target_temperature_K = args.target_temperature
    if args.step:
        config.run.step = args.step
    if args.workers and args.workers > 1:
        config.run.backend, config.run.n_workers = "multiprocessing", args.workers

    units, timestep_ps = args.units, None
    if args.log:
        log = read_lammps_log(args.log)
        units = units or log.units
        timestep_ps = log.timestep * lammps_unit_factors(log.units, args.log)[1]
    if args.timestep:
        timestep_ps = args.timestep * 1e-3
    run_ = load_run(args.topology, args.trajectory, elements=args.elements, lammps_units=units,
                    timestep_ps=timestep_ps, atom_style=args.atom_style)
    n_atoms = run_.universe.atoms.n_atoms
    energy = None
    if args.log:
        energy = energy_series_from_lammps_log(args.log, n_atoms=n_atoms)
    elif args.edr:
        energy = energy_series_from_edr(args.edr, n_atoms)

    reference = None
    if args.reference:
        if len(args.reference) > 2:
            raise ValidationInputError("--reference takes one file (extxyz) or TOPOLOGY TRAJECTORY")
        reference = load_run(*args.reference, elements=args.elements)

    calculator = None
    if args.model:
        if not Path(args.model).is_file():
            raise ValidationInputError(f"{args.model}: no such model file")
        from ffkit.calculator import FFKitCalculator

        calculator = FFKitCalculator(args.model)

    report = validate(run_, config, energy=energy, reference=reference, calculator=calculator)
    paths = write_report(report, args.report)
    verdict = "PASSED" if report["passed"] else "FAILED: " + ", ".join(report["failed_checks"])
    print(f"ffkit validate: {verdict}")
    stability = report["stability"]
    if stability["first_failure"]:
        when = "" if stability["horizon_time_ps"] is None else f" at {stability['horizon_time_ps']:g} ps"
        print(f"  first failure{when}: {stability['first_failure']}")
    print(f"  report: {paths['markdown']} (numbers in {paths['json']})")
    return 0 if report["passed"] else 1
