"""What the model's hot path costs: one forward+backward of each tier's artifact on a water box.

    python benchmarks/hot_path.py [--replicate 3] [--repeats 7] [--label NAME] [--out benchmarks/results]

The artifact is called exactly as `pair_style ffkit` calls it (local + ghost atoms, full pair
list), 1 thread, after warm-up; median of repeats. Each tier is timed with its pairwise terms
as analytic functions (`exact`) and compiled to a spline table (`table`, the default of
`ffkit compile`). Run it at two commits (PYTHONPATH=<old checkout>) to see what a change bought;
results are appended to hot_path.json under --label, and hot_path.md shows every label side by side.
"""

import argparse
import inspect
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH, so another checkout can be timed

from ffkit.artifact import compile_model  # noqa: E402
from ffkit.model.tiers import TIERS, build_model  # noqa: E402
from ffkit.neighbors import ghost_layout  # noqa: E402

DATA = ROOT / "data"


def time_artifact(path: Path, atoms, cutoff: float, repeats: int, species=(1, 8), layers: int = 1) -> float:
    """Median seconds of one call on `atoms` (a periodic box); `species`: the model's atomic numbers, in order;
    `layers`: 2 for a message-passing artifact, which needs the second shell of ghosts LAMMPS gives it."""
    module = torch.jit.load(str(path))
    layout = ghost_layout(atoms.positions, np.asarray(atoms.cell), np.asarray(atoms.pbc), cutoff, layers)
    index = np.searchsorted(np.asarray(species), atoms.numbers)
    species = torch.from_numpy(index[layout.owner].astype(np.int64))
    positions = torch.from_numpy(layout.positions).float()
    edges = torch.from_numpy(np.ascontiguousarray(layout.edge_index))
    times = []
    for k in range(repeats + 3):  # TorchScript's profiling executor settles after a few calls
        start = time.perf_counter()
        module(positions, species, edges, layout.n_local, False)
        if k >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicate", type=int, default=3, help="water frame (192 atoms) repeated n x n x n")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--label", default="current")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    atoms = read(DATA / "water_deepmd" / "water.extxyz", index=0)
    atoms.wrap()
    atoms = atoms.repeat((args.replicate,) * 3)
    can_tabulate = "tabulate" in inspect.signature(compile_model).parameters
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for tier in TIERS:
            torch.manual_seed(0)
            model = build_model(tier, [1, 8])
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.05 * torch.randn_like(p))
            for variant in ("exact", "table") if can_tabulate else ("exact",):
                path = Path(tmp) / f"{tier}_{variant}.pt"
                options = {"tabulate": variant == "table"} if can_tabulate else {}
                compile_model(model, path, dtype="float32", **options)
                seconds = time_artifact(path, atoms, model.cutoff, args.repeats, layers=model.layers)
                records.append({"label": args.label, "tier": tier, "pairwise": variant, "atoms": len(atoms),
                                "ms_per_call": round(1e3 * seconds, 2),
                                "us_per_atom": round(1e6 * seconds / len(atoms), 2)})
                print(f"{args.label:>10} {tier:>9} {variant:>6}: {1e3 * seconds:8.1f} ms "
                      f"({1e6 * seconds / len(atoms):.1f} µs/atom)", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "hot_path.json"
    old = [r for r in (json.loads(path.read_text()) if path.is_file() else []) if r["label"] != args.label]
    merged = old + records
    path.write_text(json.dumps(merged, indent=1) + "\n")
    (out / "hot_path.md").write_text(markdown(merged))
    return 0


def markdown(records) -> str:
    labels = list(dict.fromkeys(r["label"] for r in records))
    rows = list(dict.fromkeys((r["tier"], r["pairwise"]) for r in records))
    lookup = {(r["label"], r["tier"], r["pairwise"]): r["ms_per_call"] for r in records}
    atoms = records[0]["atoms"]
    lines = [f"# Hot path: one forward+backward of each tier's artifact ({atoms}-atom water, float32, 1 thread)", "",
             "ms per call, median; `exact` = pairwise terms as analytic functions, `table` = compiled to a "
             "spline table (the default of `ffkit compile`).", "",
             "| tier | pairwise | " + " | ".join(labels) + " |", "| --- | --- |" + " ---: |" * len(labels)]
    for tier, variant in rows:
        cells = [f"{lookup[(label, tier, variant)]:.1f}" if (label, tier, variant) in lookup else "–"
                 for label in labels]
        lines.append(f"| {tier} | {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
