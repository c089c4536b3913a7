"""Energy conservation and temperature from an engine's own energy output.

The engine's log is the only place the total energy of every step lives (dumps hold positions
and forces), so the NVE drift is fitted on the LAMMPS thermo table or the GROMACS edr series.
Everything is converted here to eV, ps and K, with energies per atom.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ffkit.units import energy_factor
from .loading import ValidationInputError, lammps_unit_factors

# LAMMPS's default `timestep` per units style, in that style's time unit.
LAMMPS_DEFAULT_TIMESTEP = {"metal": 0.001, "real": 1.0}


@dataclass
class EnergySeries:
    """Energies of one run in eV (whole system), times in ps, temperature in K."""

    source: str
    time_ps: np.ndarray
    total_eV: np.ndarray
    n_atoms: int
    potential_eV: np.ndarray | None = None
    temperature_K: np.ndarray | None = None
    timestep_ps: float | None = None
    units: str | None = None
    columns: dict = field(default_factory=dict)


@dataclass
class LammpsLog:
    """Thermo tables of a LAMMPS log: one dict of column -> array per `run`."""

    path: Path
    runs: list[dict[str, np.ndarray]]
    units: str
    timestep: float  # in the units style's time unit
    n_atoms: int | None


def read_lammps_log(path: str | Path) -> LammpsLog:
    """Parse the thermo tables (thermo_style one/custom) of a LAMMPS log file."""
    path = Path(path)
    if not path.is_file():
        raise ValidationInputError(f"{path}: no such LAMMPS log file")
    units, timestep, n_atoms = "lj", None, None
    runs: list[dict[str, np.ndarray]] = []
    header: list[str] | None = None
    rows: list[list[float]] = []
    with open(path, errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            words = line.split()
            if not words:
                continue
            if header is None:
                if words[0] == "units" and len(words) >= 2:
                    units = words[1]
                elif words[0] == "timestep" and len(words) >= 2:
                    timestep = _float(words[1], path, lineno, "timestep")
                elif "Step" in words and not any(_is_number(w) for w in words):
                    header, rows = words, []
                elif words[0].startswith("------------ Step"):
                    raise ValidationInputError(
                        f"{path}:{lineno}: thermo_style multi is not supported; use "
                        "'thermo_style custom step time temp pe ke etotal' (or the default 'one')"
                    )
                continue
            if words[0] == "Loop" or line.startswith("ERROR"):
                runs.append(_table(header, rows, path))
                header = None
                match = re.search(r"with (\d+) atoms", line)
                if match:
                    n_atoms = int(match.group(1))
                continue
            if len(words) != len(header):
                continue  # WARNING lines, neighbour-list notes between thermo rows
            try:
                rows.append([float(w) for w in words])
            except ValueError:
                continue
    if header is not None:  # the run died before "Loop time": keep what was printed
        runs.append(_table(header, rows, path))
    runs = [r for r in runs if len(r["Step"])]
    if not runs:
        raise ValidationInputError(
            f"{path}: no thermo table found (expected a header line starting with 'Step'); "
            "is this a LAMMPS log file?"
        )
    if timestep is None:
        timestep = LAMMPS_DEFAULT_TIMESTEP.get(units, 1.0)
    return LammpsLog(path, runs, units, timestep, n_atoms)


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _float(word: str, path: Path, lineno: int, what: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise ValidationInputError(f"{path}:{lineno}: cannot read {what} from {word!r}") from None


def _table(header: list[str], rows: list[list[float]], path: Path) -> dict[str, np.ndarray]:
    data = np.array(rows, dtype=float).reshape(-1, len(header))
    return {name: data[:, i] for i, name in enumerate(header)}


def energy_series_from_lammps_log(path: str | Path, n_atoms: int | None = None,
                                  run: int = -1) -> EnergySeries:
    """The total energy, potential energy and temperature of one run (default: the last)."""
    log = read_lammps_log(path)
    table = log.runs[run]
    _, time_to_ps = lammps_unit_factors(log.units, str(log.path))
    to_ev = energy_factor(log.units)
    n_atoms = n_atoms or log.n_atoms
    if not n_atoms:
        raise ValidationInputError(
            f"{log.path}: number of atoms unknown (no 'Loop time ... with N atoms' line); "
            "pass the topology so it can be counted"
        )
    if "TotEng" in table:
        total = table["TotEng"]
    elif "PotEng" in table and "KinEng" in table:
        total = table["PotEng"] + table["KinEng"]
    else:
        raise ValidationInputError(
            f"{log.path}: thermo table has no TotEng (nor PotEng and KinEng) column; add "
            "'etotal' to thermo_style"
        )
    time = table["Time"] * time_to_ps if "Time" in table else table["Step"] * log.timestep * time_to_ps
    return EnergySeries(
        source=str(log.path),
        time_ps=time,
        total_eV=total * to_ev,
        n_atoms=int(n_atoms),
        potential_eV=table["PotEng"] * to_ev if "PotEng" in table else None,
        temperature_K=table.get("Temp"),
        timestep_ps=log.timestep * time_to_ps,
        units=log.units,
        columns={k: v for k, v in table.items()},
    )


def _has_edr_header(path: Path) -> bool:
    """An edr file opens with its energy-term table: XDR int magic -55555, version, term count
    (version 1 files open with the term count itself). Checked before pyedr reads the file, since
    on arbitrary bytes pyedr trusts garbage counts and tries to allocate tens of GB.
    """
    import struct

    head = path.read_bytes()[:12]
    if len(head) < 12:
        return False
    first, second, third = struct.unpack(">iii", head)
    if first == -55555:
        return 1 <= second <= 100 and 0 < third < 100_000
    return 0 < first < 100_000 and 0 < second < 1000  # version 1: term count, then a name's length


def energy_series_from_edr(path: str | Path, n_atoms: int) -> EnergySeries:
    """Total energy (or the conserved energy when a thermostat is on) from a GROMACS edr file."""
    path = Path(path)
    if not path.is_file():
        raise ValidationInputError(f"{path}: no such GROMACS edr file")
    try:
        from MDAnalysis.auxiliary.EDR import EDRReader
    except ImportError as exc:  # pragma: no cover - MDAnalysis always ships it
        raise ValidationInputError(f"MDAnalysis without EDR support: {exc}") from exc
    if not _has_edr_header(path):
        raise ValidationInputError(f"{path}: not a GROMACS edr file (its first frame header lacks the edr "
                                   "magic numbers); pass the ener.edr written by gmx mdrun")
    try:
        reader = EDRReader(str(path), convert_units=True)
    except ImportError as exc:
        raise ValidationInputError(
            f"{path}: reading GROMACS edr files needs the 'pyedr' package (pip install pyedr)"
        ) from exc
    except Exception as exc:
        raise ValidationInputError(f"{path}: cannot read as a GROMACS edr file: {exc}") from exc
    terms = reader.terms
    data = reader.data_dict
    total_name = next((t for t in ("Total Energy", "Conserved En.") if t in terms), None)
    if total_name is None:
        raise ValidationInputError(f"{path}: no 'Total Energy' term (terms: {', '.join(terms)})")
    to_ev = energy_factor("kJ/mol")
    return EnergySeries(
        source=str(path),
        time_ps=np.asarray(data["Time"], dtype=float),
        total_eV=np.asarray(data[total_name], dtype=float) * to_ev,
        n_atoms=int(n_atoms),
        potential_eV=np.asarray(data["Potential"], dtype=float) * to_ev if "Potential" in data else None,
        temperature_K=np.asarray(data["Temperature"], dtype=float) if "Temperature" in data else None,
        units="gromacs",
    )


def energy_summary(series: EnergySeries, target_temperature_K: float | None = None) -> dict:
    """NVE drift (linear fit, meV/atom/ps), fluctuation about the fit (meV/atom), temperature.

    Non-finite energies make the drift infinite, so a blown-up run can never pass.
    """
    t, e = series.time_ps, series.total_eV / series.n_atoms
    out = {
        "source": series.source,
        "n_points": int(len(t)),
        "duration_ps": float(t[-1] - t[0]) if len(t) else 0.0,
        "finite": bool(np.isfinite(e).all()),
    }
    if not out["finite"] or len(t) < 3 or out["duration_ps"] <= 0:
        out.update(drift_meV_per_atom_ps=math.inf, fluctuation_meV_per_atom=math.inf)
        if len(t) < 3:
            out["note"] = "fewer than 3 energy points: print thermo more often"
    else:
        slope, intercept = np.polyfit(t, e, 1)
        residual = e - (slope * t + intercept)
        out.update(
            drift_meV_per_atom_ps=float(slope * 1e3),
            fluctuation_meV_per_atom=float(residual.std() * 1e3),
            total_energy_start_eV=float(series.total_eV[0]),
            total_energy_end_eV=float(series.total_eV[-1]),
        )
    if series.temperature_K is not None and len(series.temperature_K):
        temp = series.temperature_K
        out["temperature_mean_K"] = float(np.mean(temp))
        out["temperature_std_K"] = float(np.std(temp))
        if target_temperature_K is not None:
            out["temperature_target_K"] = float(target_temperature_K)
            out["temperature_deviation_K"] = float(abs(np.mean(temp) - target_temperature_K))
    return out
