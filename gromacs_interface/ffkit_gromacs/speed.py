"""ns/day of GROMACS NNPot runs beside the same system in pure MM, kept in one result file.

Each example measures its NN (or ML/MM) run and its all-MM reference one after the other in the
same script and calls `record`; the JSON holds one entry per system, and the Markdown table next
to it is regenerated from the JSON, so neither file is edited by hand.
"""

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Mapping

COLUMNS = ("system", "atoms (NN)", "NN set-up", "NN ns/day", "MM reference", "MM ns/day", "MM / NN",
           "drift meV/atom/ps", "length", "threads", "GROMACS", "load avg", "measured")


def record(path, key: str, entry: Mapping[str, Any]) -> Path:
    """Store `entry` under `key` in the JSON file `path` and rewrite the Markdown table beside it.

    `entry` needs system, atoms, nn_atoms, nn_setup, nn_ns_per_day, mm_setup, mm_ns_per_day,
    drift_meV_per_atom_ps, ps, dt_fs, threads, gromacs; the time and the machine load are added here.
    """
    path = Path(path)
    results: Dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    results[key] = {**entry, "load_average_1min": round(os.getloadavg()[0], 2),
                    "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    path.with_suffix(".md").write_text(render_markdown(results))
    return path


def render_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["# GROMACS NNPot speed beside pure MM",
             "",
             "Written by `examples/gromacs_water/run.py` and `examples/gromacs_mlmm_ethanol/run.py` "
             "(`ffkit_gromacs.speed.record`); do not edit by hand. ns/day from mdrun's log, the NN and "
             "the MM run measured one after the other in the same script on this shared 2-core machine "
             "(load average at the end of the pair shown).",
             "",
             "| " + " | ".join(COLUMNS) + " |",
             "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for entry in results.values():
        cells = [entry["system"], f"{entry['atoms']} ({entry['nn_atoms']})", entry["nn_setup"],
                 f"{entry['nn_ns_per_day']:.2f}", entry["mm_setup"], f"{entry['mm_ns_per_day']:.2f}",
                 f"{entry['mm_ns_per_day'] / entry['nn_ns_per_day']:.1f}×", f"{entry['drift_meV_per_atom_ps']:+.4f}",
                 f"{entry['ps']:g} ps, dt {entry['dt_fs']:g} fs", str(entry["threads"]), entry["gromacs"],
                 f"{entry['load_average_1min']:.1f}", entry["measured"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
