"""Thresholds (checks.yaml), running every analysis on a loaded run, and the pass/fail verdict.

Every check is a named number compared with a configured limit; a limit set to ``null`` makes
the check informational. The verdict (exit status 1 on any failure) lets ``ffkit validate``
gate a pipeline.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .compare import compare_distributions, compare_rdfs
from .energy import EnergySeries, energy_summary
from .loading import LoadedRun, ValidationInputError
from .stability import StabilityAnalysis, StabilityLimits
from .structure import BondedDistributions, DensityTimeSeries, diffusion_coefficients, element_rdfs


@dataclass
class EnergyConfig:
    max_drift_meV_per_atom_ps: float | None = 1.0  # |slope| of the NVE total energy per atom
    max_fluctuation_meV_per_atom: float | None = None  # std of E_total/N about the linear fit
    target_temperature_K: float | None = None
    max_temperature_deviation_K: float | None = 25.0  # |mean T − target|, when a target is set


@dataclass
class StructureConfig:
    rdf_r_max_A: float = 6.0
    rdf_bins: int = 120
    diffusion: bool = True  # MSD diffusion per element (meaningful for liquids)


@dataclass
class ComparisonConfig:
    max_rdf_mae: float | None = 0.15  # mean |g − g_ref| per element pair
    max_js_distance: float | None = 0.2  # bonded-geometry histograms (base-2 JS distance)
    max_bond_wasserstein_A: float | None = 0.05
    max_angle_wasserstein_deg: float | None = 5.0
    max_dihedral_wasserstein_deg: float | None = None


@dataclass
class ParityConfig:
    """Default limits allow for LAMMPS's default dump precision (6 significant digits: about
    1e-4 Å rounding of positions, i.e. up to ~0.01 eV/Å on stiff bonds). With
    ``dump_modify ID format float %.12g`` the floor is MDAnalysis's float32 coordinates
    (~1e-4 eV/Å max, ~1e-5 relative RMSE on stiff water) and the limits can be tightened."""

    frames: int = 5  # evenly spaced frames re-evaluated with the model
    max_abs_error_eV_A: float | None = 0.05
    max_rmse_eV_A: float | None = None
    max_relative_rmse: float | None = 0.01  # RMSE / RMS of the dumped forces


BACKENDS = ("serial", "multiprocessing", "dask")  # MDAnalysis's built-in backends


@dataclass
class RunConfig:
    step: int = 1  # analyse every step-th frame
    backend: str = "serial"  # MDAnalysis backend for frame-parallel analyses
    n_workers: int = 1


@dataclass
class ValidationConfig:
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    stability: StabilityLimits = field(default_factory=StabilityLimits)
    structure: StructureConfig = field(default_factory=StructureConfig)
    comparison: ComparisonConfig = field(default_factory=ComparisonConfig)
    parity: ParityConfig = field(default_factory=ParityConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None) -> ValidationConfig:
    """Defaults overridden by a YAML file with the same sections; unknown keys are refused."""
    config = ValidationConfig()
    if path is None:
        return config
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ValidationInputError(f"{path}: no such checks file") from None
    except yaml.YAMLError as exc:
        raise ValidationInputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationInputError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    sections = {f.name for f in dataclasses.fields(config)}
    for name, values in data.items():
        if name not in sections:
            raise ValidationInputError(
                f"{path}: unknown section '{name}'; sections are {', '.join(sorted(sections))}")
        section = getattr(config, name)
        allowed = {f.name: f for f in dataclasses.fields(section)}
        if not isinstance(values, dict):
            raise ValidationInputError(f"{path}: section '{name}' must be a mapping")
        for key, value in values.items():
            if key not in allowed:
                raise ValidationInputError(
                    f"{path}: unknown key '{name}.{key}'; keys of '{name}' are "
                    + ", ".join(sorted(allowed)))
            numeric = "float" in allowed[key].type or "int" in allowed[key].type
            if value is None and "None" not in allowed[key].type:
                raise ValidationInputError(f"{path}: '{name}.{key}' cannot be null")
            if value is not None and numeric and (
                    not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise ValidationInputError(f"{path}: '{name}.{key}' must be a number, got {value!r}")
            setattr(section, key, value)
    if config.run.backend not in BACKENDS:
        raise ValidationInputError(
            f"{path}: run.backend '{config.run.backend}' unknown; use one of {', '.join(BACKENDS)}")
    return config


@dataclass
class Check:
    """One number against one limit; ``limit`` None means report only."""

    name: str
    value: float | None
    limit: float | None
    unit: str = ""
    kind: str = "max"  # "max": value must be <= limit; "min": value must be >= limit
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.limit is None:
            return None
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return False
        return self.value <= self.limit if self.kind == "max" else self.value >= self.limit

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d


def run_kwargs(config: ValidationConfig) -> dict:
    kwargs = {"step": config.run.step}
    if config.run.backend != "serial":
        kwargs.update(backend=config.run.backend, n_workers=config.run.n_workers)
    return kwargs


def check_energy(series: EnergySeries, config: EnergyConfig) -> tuple[dict, list[Check]]:
    summary = energy_summary(series, config.target_temperature_K)
    checks = [
        Check("energy.drift", abs(summary["drift_meV_per_atom_ps"]), config.max_drift_meV_per_atom_ps,
              "meV/atom/ps", detail=f"linear fit of E_total/N over {summary['duration_ps']:g} ps"),
        Check("energy.fluctuation", summary["fluctuation_meV_per_atom"],
              config.max_fluctuation_meV_per_atom, "meV/atom"),
    ]
    if "temperature_deviation_K" in summary:
        checks.append(Check("energy.temperature", summary["temperature_deviation_K"],
                            config.max_temperature_deviation_K, "K",
                            detail=f"mean {summary['temperature_mean_K']:.1f} K ± "
                                   f"{summary['temperature_std_K']:.1f}, target "
                                   f"{config.target_temperature_K:g} K"))
    return summary, checks


def check_stability(run: LoadedRun, config: ValidationConfig) -> tuple[dict, list[Check]]:
    analysis = StabilityAnalysis(run.universe.atoms, config.stability).run(**run_kwargs(config))
    r = analysis.results
    lim = config.stability
    finite_min = r.min_distance[np.isfinite(r.min_distance)]
    summary = {
        "frames": analysis.frames, "times_ps": analysis.times,
        "min_distance_A": r.min_distance, "max_bond_strain": r.max_bond_strain,
        "n_broken_bonds": r.n_broken_bonds, "n_formed_bonds": r.n_formed_bonds,
        "n_outside_box": r.n_outside_box, "n_nonfinite": r.n_nonfinite, "max_jump_A": r.max_jump,
        "n_reference_bonds": int(len(analysis.bonds)), "box_checked": analysis.check_box,
        "horizon_frame": r.horizon_frame,
        "horizon_time_ps": r.horizon_time if run.times_known else None,
        "times_known": run.times_known,
        "first_failure": r.first_failure,
    }
    n_bad_frames = int(np.count_nonzero(r.failed))
    checks = [
        Check("stability.nonfinite_frames", int(np.count_nonzero(r.n_nonfinite)), 0, "frames"),
        Check("stability.min_distance", float(finite_min.min()) if len(finite_min) else None,
              lim.min_distance_A, "Å", kind="min"),
        Check("stability.broken_bond_frames", int(np.count_nonzero(r.n_broken_bonds)), 0, "frames",
              detail=f"{len(analysis.bonds)} bonds from the first frame, broken beyond "
                     f"{lim.bond_break_factor}× their first length"),
        Check("stability.formed_bonds", int(r.n_formed_bonds.max()) if len(r.n_formed_bonds) else 0,
              lim.max_formed_bonds, "bonds"),
        Check("stability.outside_box_frames", int(np.count_nonzero(r.n_outside_box)),
              0 if analysis.check_box else None, "frames",
              detail="" if analysis.check_box else "not checked: " + (
                  "no periodic box" if run.universe.trajectory.ts.dimensions is None
                  else "unwrapped coordinates")),
        Check("stability.jump_frames", int(np.count_nonzero(r.n_jumps)), 0, "frames"),
        Check("stability.failed_frames", n_bad_frames, None, "frames",
              detail=r.first_failure or "stable over the whole trajectory"),
    ]
    return summary, checks


def structure_of(run: LoadedRun, config: ValidationConfig, r_max: float | None = None,
                 with_diffusion: bool = True) -> dict:
    """RDFs, bonded distributions, density and (optionally) diffusion of a run."""
    u = run.universe
    kwargs = run_kwargs(config)
    out: dict = {}
    if u.trajectory.ts.dimensions is not None:
        out["rdf"] = element_rdfs(u, r_max or config.structure.rdf_r_max_A,
                                  config.structure.rdf_bins, **kwargs)
        density = DensityTimeSeries(u.atoms).run(**kwargs)
        out["density_g_cm3"] = {"mean": float(np.nanmean(density.results.density)),
                                "std": float(np.nanstd(density.results.density)),
                                "times_ps": density.times, "values": density.results.density}
    bonded = BondedDistributions(u.atoms, config.stability.bond_factor).run(**kwargs)
    out["bonded"] = {"bonds": bonded.results.bonds, "angles": bonded.results.angles,
                     "dihedrals": bonded.results.dihedrals, "means": bonded.results.means}
    if (with_diffusion and config.structure.diffusion and run.times_known
            and u.trajectory.ts.dimensions is not None and u.trajectory.n_frames >= 5):
        out["diffusion"] = diffusion_coefficients(u)
    return out


def check_comparison(structure: dict, reference: dict, config: ComparisonConfig) -> tuple[dict, list[Check]]:
    summary: dict = {"rdf_mae": {}, "bonded": {}}
    checks = []
    if "rdf" in structure and "rdf" in reference:
        summary["rdf_mae"] = compare_rdfs(structure["rdf"], reference["rdf"])
        for pair, mae in summary["rdf_mae"].items():
            checks.append(Check(f"compare.rdf_mae.{pair}", mae, config.max_rdf_mae))
    limits = {"bonds": (config.max_bond_wasserstein_A, "Å"),
              "angles": (config.max_angle_wasserstein_deg, "deg"),
              "dihedrals": (config.max_dihedral_wasserstein_deg, "deg")}
    for kind, (w_limit, unit) in limits.items():
        distances = compare_distributions(structure["bonded"][kind], reference["bonded"][kind])
        summary["bonded"][kind] = distances
        for key, d in distances.items():
            checks.append(Check(f"compare.{kind}.{key}.js", d["js"], config.max_js_distance))
            checks.append(Check(f"compare.{kind}.{key}.wasserstein", d["wasserstein"], w_limit, unit))
    return summary, checks


def check_parity(run: LoadedRun, calculator, config: ParityConfig) -> tuple[dict, list[Check]]:
    from .parity import ForceParity

    if run.force_to_eV_per_A is None:
        raise ValidationInputError(
            f"{run.trajectory}: the force unit of this LAMMPS dump is unknown; pass --log "
            "(its 'units' line is read) or --units metal|real")
    n = run.universe.trajectory.n_frames
    frames = sorted(set(np.linspace(0, n - 1, min(config.frames, n)).round().astype(int).tolist()))
    parity = ForceParity(run.universe, calculator, run.force_to_eV_per_A).run(frames=frames)
    overall = parity.results.overall
    where = f"worst: atom {overall['worst_atom']} in frame {overall['worst_frame']}"
    checks = [
        Check("parity.max_abs_force_error", overall["max_abs_eV_A"], config.max_abs_error_eV_A,
              "eV/Å", detail=where),
        Check("parity.force_rmse", overall["rmse_eV_A"], config.max_rmse_eV_A, "eV/Å",
              detail=f"frames {overall['frames']}"),
        Check("parity.relative_force_rmse", overall["relative_rmse"], config.max_relative_rmse,
              detail="RMSE / RMS of the dumped forces"),
    ]
    return {**overall, "per_frame_max_abs_eV_A": parity.results.max_abs}, checks


def validate(run: LoadedRun, config: ValidationConfig | None = None, *,
             energy: EnergySeries | None = None, reference: LoadedRun | None = None,
             calculator=None) -> dict:
    """Run every applicable check; returns {"checks": [...], "passed": bool, sections...}."""
    config = config or ValidationConfig()
    report: dict = {"topology": str(run.topology), "trajectory": str(run.trajectory),
                    "engine": run.engine, "n_atoms": int(run.universe.atoms.n_atoms),
                    "n_frames": int(run.universe.trajectory.n_frames),
                    "config": config.as_dict()}
    checks: list[Check] = []
    if energy is not None:
        report["energy"], found = check_energy(energy, config.energy)
        report["energy"]["series"] = {"time_ps": energy.time_ps, "total_eV": energy.total_eV,
                                      "temperature_K": energy.temperature_K}
        checks += found
    report["stability"], found = check_stability(run, config)
    checks += found
    report["structure"] = structure_of(run, config)
    if reference is not None:
        ref_structure = structure_of(reference, config, with_diffusion=False)
        report["reference"] = {"topology": str(reference.topology),
                               "trajectory": str(reference.trajectory), "structure": ref_structure}
        report["comparison"], found = check_comparison(report["structure"], ref_structure,
                                                       config.comparison)
        checks += found
    if calculator is not None:
        report["parity"], found = check_parity(run, calculator, config.parity)
        checks += found
    report["checks"] = [c.as_dict() for c in checks]
    report["passed"] = all(c.passed is not False for c in checks)
    report["failed_checks"] = [c.name for c in checks if c.passed is False]
    return report
