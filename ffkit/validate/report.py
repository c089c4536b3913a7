"""Write a validation result as report.json, report.md and PNG plots (matplotlib, drawn without pyplot).

The JSON holds every number (non-finite values become null); the markdown is what a person
reads first: the verdict, one table row per check, then the plots.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def to_jsonable(value):
    """numpy arrays/scalars to lists/numbers; NaN and inf to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def write_report(report: dict, directory: str | Path) -> dict[str, Path]:
    """Write report.json, report.md and plots into ``directory``; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "report.json", "markdown": directory / "report.md"}
    paths.update(write_plots(report, directory))
    paths["json"].write_text(json.dumps(to_jsonable(report), indent=1) + "\n")
    paths["markdown"].write_text(markdown(report, {k: v.name for k, v in paths.items()
                                                   if v.suffix == ".png"}))
    return paths


def markdown(report: dict, plots: dict[str, str]) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [
        "# ffkit validate report", "",
        f"**{verdict}** — {report['trajectory']} ({report['engine']}, {report['n_atoms']} atoms, "
        f"{report['n_frames']} frames; topology {report['topology']})", "",
    ]
    if report["failed_checks"]:
        lines += ["Failed: " + ", ".join(f"`{name}`" for name in report["failed_checks"]), ""]
    lines += ["| check | value | limit | unit | result | detail |", "|---|---|---|---|---|---|"]
    for c in report["checks"]:
        result = {True: "pass", False: "**FAIL**", None: "info"}[c["passed"]]
        limit = c["limit"] if c["limit"] is None else ("≤ " if c["kind"] == "max" else "≥ ") + _fmt(c["limit"])
        lines.append(f"| {c['name']} | {_fmt(c['value'])} | {limit or '—'} | {c['unit']} | "
                     f"{result} | {c['detail']} |")
    lines.append("")
    stab = report["stability"]
    if stab["horizon_frame"] is None:
        horizon = "none (no failure)"
    elif stab["horizon_time_ps"] is None:
        horizon = f"frame {stab['horizon_frame']} (frame times unknown)"
    else:
        horizon = f"{stab['horizon_time_ps']:g} ps (frame {stab['horizon_frame']})"
    lines += ["## Stability", "", f"Stability horizon: {horizon}"
              + (f" — {stab['first_failure']}" if stab["first_failure"] else ""), ""]
    if "energy" in report:
        e = report["energy"]
        lines += ["## Energy", "",
                  f"Source {e['source']}: drift {_fmt(e['drift_meV_per_atom_ps'])} meV/atom/ps, "
                  f"fluctuation {_fmt(e['fluctuation_meV_per_atom'])} meV/atom over "
                  f"{_fmt(e['duration_ps'])} ps"
                  + (f"; temperature {e['temperature_mean_K']:.1f} ± {e['temperature_std_K']:.1f} K"
                     if "temperature_mean_K" in e else ""), ""]
    s = report["structure"]
    lines += ["## Structure", ""]
    if "density_g_cm3" in s:
        lines.append(f"Density {s['density_g_cm3']['mean']:.4f} ± {s['density_g_cm3']['std']:.4f} g/cm³.")
    means = s["bonded"]["means"]
    if means:
        lines.append("Mean bonded geometry: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()) + ".")
    if "diffusion" in s:
        lines.append("Self-diffusion (10⁻⁵ cm²/s): " + ", ".join(
            f"{el} {d['D_1e-5_cm2_per_s']:.3g}" for el, d in s["diffusion"].items()) + ".")
    lines.append("")
    if "parity" in report:
        p = report["parity"]
        lines += ["## Force parity", "",
                  f"Frames {p['frames']}: MAE {_fmt(p['mae_eV_A'])}, RMSE {_fmt(p['rmse_eV_A'])}, "
                  f"max {_fmt(p['max_abs_eV_A'])} eV/Å (relative RMSE {_fmt(p['relative_rmse'])}).", ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{name}]({file})" for name, file in plots.items()] + [""]
    return "\n".join(lines)


def write_plots(report: dict, directory: Path) -> dict[str, Path]:
    from ffkit.plots import figure

    written = {}

    def save(fig, name):
        path = directory / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        written[name] = path

    stab = report["stability"]
    fig, axes = figure(3, 1, figsize=(6, 7), sharex=True)
    t = stab["times_ps"] if stab["times_known"] else stab["frames"]
    axes[0].plot(t, stab["min_distance_A"])
    axes[0].axhline(report["config"]["stability"]["min_distance_A"], color="r", ls="--")
    axes[0].set_ylabel("min distance (Å)")
    axes[1].plot(t, 100 * np.asarray(stab["max_bond_strain"], dtype=float))
    axes[1].axhline(100 * (report["config"]["stability"]["bond_break_factor"] - 1), color="r", ls="--")
    axes[1].set_ylabel("max bond strain (%)")
    axes[2].plot(t, stab["max_jump_A"])
    axes[2].set_ylabel("max step (Å)")
    axes[2].set_xlabel("time (ps)" if stab["times_known"] else "frame")
    if stab["horizon_frame"] is not None:
        first = int(np.flatnonzero(np.asarray(stab["frames"]) == stab["horizon_frame"])[0])
        for ax in axes:
            ax.axvline(t[first], color="r", alpha=0.5)
    save(fig, "stability")

    if "energy" in report:
        series = report["energy"]["series"]
        n_atoms = report["n_atoms"]
        e = np.asarray(series["total_eV"], dtype=float) / n_atoms
        temp = series["temperature_K"]
        fig, axes = figure(2 if temp is not None else 1, 1, figsize=(6, 5), sharex=True,
                                 squeeze=False)
        axes[0, 0].plot(series["time_ps"], 1e3 * (e - e[0]))
        axes[0, 0].set_ylabel("E_total/N − E_0 (meV/atom)")
        if temp is not None:
            axes[1, 0].plot(series["time_ps"], temp)
            axes[1, 0].set_ylabel("T (K)")
        axes[-1, 0].set_xlabel("time (ps)")
        save(fig, "energy")

    structure = report["structure"]
    reference = report.get("reference", {}).get("structure", {})
    if "rdf" in structure:
        pairs = list(structure["rdf"])
        fig, axes = figure(len(pairs), 1, figsize=(6, 2.2 * len(pairs)), squeeze=False)
        for ax, pair in zip(axes[:, 0], pairs):
            ax.plot(structure["rdf"][pair]["r"], structure["rdf"][pair]["g"], label="run")
            if pair in reference.get("rdf", {}):
                ax.plot(reference["rdf"][pair]["r"], reference["rdf"][pair]["g"], "--", label="reference")
            ax.set_ylabel(f"g(r) {pair}")
            ax.legend()
        axes[-1, 0].set_xlabel("r (Å)")
        save(fig, "rdf")

    panels = [(kind, key) for kind in ("bonds", "angles") for key in structure["bonded"][kind]]
    if panels:
        fig, axes = figure(len(panels), 1, figsize=(6, 2.2 * len(panels)), squeeze=False)
        for ax, (kind, key) in zip(axes[:, 0], panels):
            d = structure["bonded"][kind][key]
            ax.plot(d["x"], d["p"], label="run")
            ref = reference.get("bonded", {}).get(kind, {}).get(key)
            if ref is not None:
                ax.plot(ref["x"], ref["p"], "--", label="reference")
            occupied = np.asarray(d["x"])[np.asarray(d["p"]) > 0]
            if len(occupied):  # zoom on the populated range
                pad = 0.2 * (occupied.max() - occupied.min()) + (0.05 if kind == "bonds" else 2.0)
                ax.set_xlim(occupied.min() - pad, occupied.max() + pad)
            ax.set_xlabel(f"{key} {'length (Å)' if kind == 'bonds' else 'angle (deg)'}")
            ax.legend()
        save(fig, "bonded")

    if "diffusion" in structure:
        fig, ax = figure(figsize=(6, 3.5))
        for element, d in structure["diffusion"].items():
            ax.plot(d["lag_ps"], d["msd_A2"], label=f"{element}: D = {d['D_1e-5_cm2_per_s']:.3g}e-5 cm²/s")
        ax.set_xlabel("lag (ps)")
        ax.set_ylabel("MSD (Å²)")
        ax.legend()
        save(fig, "msd")
    return written
