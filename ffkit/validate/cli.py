"""`ffkit validate`: is a trajectory physically right? Exit 0 when every check passes, 1 when one
fails (so it can gate a pipeline), 2 on unusable input."""

from __future__ import annotations

import argparse

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
    from .run import run_validation

    report = run_validation(args.topology, args.trajectory, log=args.log, edr=args.edr, reference=args.reference,
                            model=args.model, config=args.config, report_dir=args.report, elements=args.elements,
                            units=args.units, timestep_fs=args.timestep, atom_style=args.atom_style,
                            target_temperature=args.target_temperature, step=args.step, workers=args.workers)
    verdict = "PASSED" if report["passed"] else "FAILED: " + ", ".join(report["failed_checks"])
    print(f"ffkit validate: {verdict}")
    stability = report["stability"]
    if stability["first_failure"]:
        when = "" if stability["horizon_time_ps"] is None else f" at {stability['horizon_time_ps']:g} ps"
        print(f"  first failure{when}: {stability['first_failure']}")
    print(f"  report: {report['paths']['markdown']} (numbers in {report['paths']['json']})")
    return 0 if report["passed"] else 1
