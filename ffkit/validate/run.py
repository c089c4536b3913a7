"""`run_validation`: the one way into trajectory validation, shared by `ffkit validate`, `ffkit demo`
and the benchmarks (they call this, not the command line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from .loading import ValidationInputError


def run_validation(topology, trajectory=None, *, log=None, edr=None, reference: Optional[Sequence[str]] = None,
                   model=None, config=None, report_dir="validate_report", elements: Optional[Sequence[str]] = None,
                   units: Optional[str] = None, timestep_fs: Optional[float] = None, atom_style: Optional[str] = None,
                   target_temperature: Optional[float] = None, step: Optional[int] = None,
                   workers: Optional[int] = None) -> Dict[str, Any]:
    """Validate one run and write its report; returns the report (with "passed", "failed_checks",
    "stability" and the written "paths"). Raises ValidationInputError on unusable input.

    `config` is a checks.yaml path or None (defaults); `log` (LAMMPS) also gives units and time step;
    `reference` is an extxyz or [TOPOLOGY, TRAJECTORY] of another run; `model` an ffkit artifact.
    """
    from .checks import load_config, validate
    from .energy import energy_series_from_edr, energy_series_from_lammps_log, read_lammps_log
    from .loading import lammps_unit_factors, load_run
    from .report import write_report

    if log and edr:
        raise ValidationInputError("give a LAMMPS log or a GROMACS edr file, not both")
    checks = load_config(config)
    if target_temperature is not None:
        checks.energy.target_temperature_K = target_temperature
    if step:
        checks.run.step = step
    if workers and workers > 1:
        checks.run.backend, checks.run.n_workers = "multiprocessing", workers

    timestep_ps = None
    if log:
        lammps_log = read_lammps_log(log)
        units = units or lammps_log.units
        timestep_ps = lammps_log.timestep * lammps_unit_factors(lammps_log.units, log)[1]
    if timestep_fs:
        timestep_ps = timestep_fs * 1e-3
    run = load_run(topology, trajectory, elements=elements, lammps_units=units, timestep_ps=timestep_ps,
                   atom_style=atom_style)
    n_atoms = run.universe.atoms.n_atoms
    energy = None
    if log:
        energy = energy_series_from_lammps_log(log, n_atoms=n_atoms)
    elif edr:
        energy = energy_series_from_edr(edr, n_atoms)

    reference_run = None
    if reference:
        reference = [reference] if isinstance(reference, (str, Path)) else list(reference)
        if len(reference) > 2:
            raise ValidationInputError("--reference takes one file (extxyz) or TOPOLOGY TRAJECTORY")
        reference_run = load_run(*reference, elements=elements)

    calculator = None
    if model:
        if not Path(model).is_file():
            raise ValidationInputError(f"{model}: no such model file")
        from ffkit.calculator import FFKitCalculator

        calculator = FFKitCalculator(model)

    report = validate(run, checks, energy=energy, reference=reference_run, calculator=calculator)
    report["paths"] = write_report(report, report_dir)
    return report
