"""Speed of `pair_style ffkit` in LAMMPS against the SPC/E anchor and the bare TorchScript call.

    python benchmarks/lammps_speed.py [--tiers mm fast balanced accurate] [--dtypes float32 float64]
                                      [--replicate 3] [--big-replicate 5] [--repeats 3] [--threads 2]
                                      [--committee 3] [--scaling 2 4 8] [--name lammps_speed]
                                      [--out benchmarks/results]

Water box: the first frame of data/water_deepmd replicated (3x3x3 = 5184 atoms). Cases,
interleaved within each repeat (medians reported, so machine load hits every case alike):
- `ffkit <tier> <dtype>`: NVE MD with the venv's `lmp`, 0.5 fs, 1 rank (µs/atom/step from the
  loop time of the measured run, after a warm-up run);
- `bare <tier> <dtype>`: the same artifact called from Python on the same frame (ghost layout from
  ffkit.neighbors), forward + backward, 1 thread: plugin overhead = ffkit / bare;
- `ffkit null`: an artifact that returns zeros at once (4 Å cutoff): the plugin's own cost
  (neighbour list -> graph, tensors, force scatter) per atom-step;
- `mm-anchor`: SPC/E, lj/cut/coul/long 10 Å + PPPM 1e-4, SHAKE, 2 fs, 1 and 2 ranks;
- `ffkit <tier>` on the big box (5x5x5 = 24000 atoms), 1 and 2 ranks, each tier (first dtype): MPI speed-up;
- with `--threads 2`: every ML case again with 2 OpenMP threads on 1 rank (`lmp -pk omp 2`: the style's
  threads and LAMMPS's neighbour-list builds);
- with `--committee 3`: a committee of 3 `fast` members (seeds 0-2; `ffkit compile m1 m2 m3`), and one
  of the 3 heads of a `fast` model (`heads: 3`, descriptors shared), its spread read every 1000 and every
  10 steps, against one member: what a committee costs (issue #18 target: <= 1.5x one member);
- with `--scaling 2 4 8`: each tier again on 1536, 12 288 and 98 304 atoms (a second table: is the
  cost per atom flat from 10^3 to 10^5 atoms?).
Models are untrained tiers from ffkit.model.tiers (speed does not depend on the weights), or
term mixes on top of `accurate` (VARIANTS: the message-passing terms, to measure what reaching two
cutoffs costs against a strictly local design; `--tiers accurate tensors tensors-local`).
Writes lammps_speed.json (records: case, ranks, atoms, us_per_atom_step, ns_per_day, ratio_to_mm,
plus timestep_fs, steps, cpu_percent) and lammps_speed.md, which ends with issue #18's targets beside what
the run measured. The LAMMPS inputs, the SPC/E data file and
the interleaved timing loop are ffkit_lammps_adapter.timing's, shared with `ffkit bench`.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
import torch
from ffkit_lammps_adapter.md import write_atomic_data
from ffkit_lammps_adapter.timing import (
    add_ratios,
    ml_case,
    mm_anchor,
    pair_case,
    time_cases,
    write_spce_data,
)

from ffkit.artifact import compile_model
from ffkit.committee import compile_committee
from ffkit.model.tiers import TIERS, build_model
from ffkit.neighbors import ghost_layout

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


# term mixes over the `accurate` tier (tiers.resolve_terms merges them), timed like tiers
VARIANTS = {
    "states": {"many_body": {"type": "message_passing"}},  # accurate's many-body term + a layer of states
    "tensors": {"many_body": None, "tensors": {"type": "tensor_messages", "cutoff": 5.0, "channels": 32,
                                                "interactions": 1, "hidden": [128, 128]}},
    "tensors-local": {"many_body": None, "tensors": {"type": "tensor_messages", "cutoff": 5.0, "channels": 32,
                                                      "interactions": 0, "hidden": [128, 128]}},
    "accurate+tensors": {"tensors": {"type": "tensor_messages", "cutoff": 5.0, "channels": 32, "interactions": 1,
                                     "hidden": [64, 64]}},
}


def untrained(name: str):
    """The untrained model of a tier or of a VARIANTS mix, for water (H, O)."""
    if name in VARIANTS:
        return build_model("accurate", [1, 8], terms=VARIANTS[name])
    return build_model(name, [1, 8])


class NullArtifact(torch.nn.Module):
    """Zero energy and forces with no work: what remains of a step is the plugin's own cost."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.ffkit_format_version: int = 1
        self.cutoff: float = cutoff
        self.species: list[int] = [1, 8]
        self.dtype_name: str = "float32"
        self.energy_unit: str = "eV"
        self.length_unit: str = "angstrom"

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                compute_virial: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.zeros(n_local, dtype=positions.dtype), torch.zeros_like(positions),
                torch.zeros(0, 6, dtype=positions.dtype))


def write_null_artifact(path: Path, cutoff: float = 4.0) -> Path:
    meta = {"format": "ffkit-artifact", "format_version": 1, "engine": "lammps", "species": [1, 8],
            "species_symbols": ["H", "O"], "cutoff": cutoff, "dtype": "float32", "tier": "null",
            "units": {"energy": "eV", "length": "angstrom", "force": "eV/angstrom"}}
    torch.jit.script(NullArtifact(cutoff)).save(str(path), _extra_files={"metadata.json": json.dumps(meta)})
    return path


def water_box(replicate: int):
    atoms = ase.io.read(DATA / "water_deepmd" / "water.extxyz", index=0)
    atoms.wrap()
    return atoms.repeat((replicate,) * 3)


def bare_call(model_path: Path, atoms, repeats: int = 3) -> float:
    """Median wall seconds of one forward+backward of the artifact on `atoms` (1 thread), after warm-up."""
    files = {"metadata.json": ""}
    module = torch.jit.load(str(model_path), _extra_files=files)
    meta = json.loads(files["metadata.json"])
    layout = ghost_layout(atoms.positions, np.asarray(atoms.cell), np.asarray(atoms.pbc), meta["cutoff"],
                          meta.get("layers", 1))
    lookup = {z: k for k, z in enumerate(meta["species"])}
    species = torch.from_numpy(np.array([lookup[z] for z in atoms.numbers], dtype=np.int64)[layout.owner])
    positions = torch.from_numpy(layout.positions).to(getattr(torch, meta["dtype"]))
    edges = torch.from_numpy(np.ascontiguousarray(layout.edge_index))
    times = []
    for k in range(repeats + 2):
        start = time.perf_counter()
        module(positions, species, edges, layout.n_local, False)
        if k >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class BareCase:
    """The artifact called from Python (not MD): a case for ffkit_lammps_adapter.timing.time_cases."""

    def __init__(self, name: str, model: Path, atoms, **info):
        self.name, self.model, self.atoms, self.info = name, model, atoms, info
        self.ranks, self.timestep_fs, self.steps = 1, None, 1

    def calibrate(self, target_seconds: float) -> None:
        """Nothing to calibrate: each measurement is a median of a few calls."""

    def measure(self) -> dict:
        return {"seconds_per_step": bare_call(self.model, self.atoms), "atoms": len(self.atoms), "steps": 1,
                "cpu_percent": None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiers", nargs="+", default=list(TIERS), choices=list(TIERS) + list(VARIANTS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--replicate", type=int, default=3)
    parser.add_argument("--big-replicate", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="lammps_speed", help="result files NAME.json and NAME.md")
    parser.add_argument("--threads", type=int, default=1, help="also time each ML case with this many threads")
    parser.add_argument("--committee", type=int, default=0, metavar="N",
                        help="also time a committee of N fast members against one member")
    parser.add_argument("--scaling", type=int, nargs="*", default=[], metavar="R",
                        help="also time each tier (first dtype, 1 rank) on the water frame replicated RxRxR, "
                             "for each R: 2 4 8 gives 1536, 12 288 and 98 304 atoms")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    work = Path(tempfile.mkdtemp(prefix="ffkit_lammps_speed_"))
    box = water_box(args.replicate)
    write_atomic_data(box, work / "water.data", ["O", "H"])
    write_spce_data(box, work / "spce.data")

    cases = [mm_anchor(work / "spce.data", work / f"mm-anchor-{ranks}", ranks=ranks) for ranks in (1, 2)]
    cases.append(ml_case("ffkit null (plugin overhead, 4 A)", work / "water.data",
                         write_null_artifact(work / "null.pt"), ["O", "H"], work / "null"))
    for tier in args.tiers:
        for dtype in args.dtypes:
            model = work / f"{tier}_{dtype}.pt"
            meta = compile_model(untrained(tier), model, dtype=dtype)
            default = "kernel" if "kernel" in meta["paths"] else "torchscript"
            cases.append(ml_case(f"ffkit {tier} {dtype}", work / "water.data", model, ["O", "H"],
                                 work / f"{tier}_{dtype}", tier=tier, dtype=dtype, path=default))
            if default == "kernel":  # the same artifact on its TorchScript model, for the kernel's gain
                cases.append(ml_case(f"ffkit {tier} {dtype} torchscript", work / "water.data", model, ["O", "H"],
                                     work / f"{tier}_{dtype}_torchscript", tier=tier, dtype=dtype,
                                     path="torchscript"))
            cases.append(BareCase(f"bare {tier} {dtype}", model, box, tier=tier, dtype=dtype))
            if args.threads > 1:
                cases.append(ml_case(f"ffkit {tier} {dtype} {args.threads} threads", work / "water.data", model,
                                     ["O", "H"], work / f"{tier}_{dtype}_threads", threads=args.threads,
                                     threaded=args.threads))
    if args.committee > 1:
        cases += committee_cases(args, work)
    records = time_cases(cases, args.repeats)

    # MPI speed-up of each tier on the big box, measured after the main table
    write_atomic_data(water_box(args.big_replicate), work / "big.data", ["O", "H"])
    dtype = args.dtypes[0]
    big_cases = [ml_case(f"ffkit {tier} {dtype} big box", work / "big.data", work / f"{tier}_{dtype}.pt", ["O", "H"],
                         work / f"big-{tier}-{ranks}", ranks=ranks, tier=tier, dtype=dtype, big=True)
                 for tier in args.tiers for ranks in (1, 2)]
    records += time_cases(big_cases, args.repeats)
    records += time_cases(scaling_cases(args, work), args.repeats)

    add_ratios(records, next(r for r in records if r["case"] == "mm-anchor" and r["ranks"] == 1))
    for r in records:
        if r["case"].startswith("ffkit ") and "threaded" in r:
            single = next(b for b in records if b["case"] == r["case"].rsplit(" ", 2)[0])
            r["speedup_vs_1_thread"] = single["us_per_atom_step"] / r["us_per_atom_step"]
        elif "members" in r:
            one = next(b for b in records if b["case"] == f"ffkit {r['tier']} {r['dtype']} member")
            r["cost_vs_one_member"] = r["us_per_atom_step"] / one["us_per_atom_step"]
        elif r["case"].startswith("ffkit ") and "tier" in r and "big" not in r and "scaling" not in r \
                and "member" not in r["case"]:
            bare = next(b for b in records if b["case"] == f"bare {r['tier']} {r['dtype']}")
            r["overhead_vs_bare"] = r["us_per_atom_step"] / bare["us_per_atom_step"]
    for r in records:
        if "big" in r and r["ranks"] == 2:
            one_rank = next(b for b in records if b["case"] == r["case"] and b["ranks"] == 1)
            r["speedup_vs_1_rank"] = one_rank["us_per_atom_step"] / r["us_per_atom_step"]

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(records, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(records, args))
    print(markdown(records, args))


def committee_cases(args, work: Path) -> list:
    """Committees of `args.committee` untrained `fast` members against their first member alone: independent
    members (seeds 0..N-1), and the heads of one model (`heads: N`), which share their descriptors, with the
    spread made on energy steps only (thermo 1000) and every 10 steps (`fix pair 10 ffkit force_std 1`)."""
    dtype, members = args.dtypes[0], []
    for seed in range(args.committee):
        torch.manual_seed(seed)
        members.append(work / f"member{seed}_{dtype}.pt")
        compile_model(build_model("fast", [1, 8]), members[-1], dtype=dtype)
    committee = work / f"committee_{dtype}.pt"
    compile_committee(members, committee, dtype=dtype)
    torch.manual_seed(0)
    heads = work / f"heads_{dtype}.pt"
    compile_committee([build_model("fast", [1, 8], terms={"three_body": {"heads": args.committee}})], heads,
                      dtype=dtype)
    n, data = args.committee, work / "water.data"
    pair = f"pair_style ffkit\npair_coeff * * {heads.resolve()} O H"
    return [ml_case(f"ffkit fast {dtype} member", data, members[0], ["O", "H"], work / "member", tier="fast",
                    dtype=dtype),
            ml_case(f"ffkit fast {dtype} x{n} committee", data, committee, ["O", "H"], work / "committee",
                    tier="fast", dtype=dtype, members=n),
            pair_case(f"ffkit fast {dtype} x{n} heads, spread every 1000 steps", data, pair, work / "heads",
                      tier="fast", dtype=dtype, members=n, heads=True),
            pair_case(f"ffkit fast {dtype} x{n} heads, spread every 10 steps", data,
                      pair + "\nfix spread all pair 10 ffkit force_std 1", work / "heads-10", tier="fast",
                      dtype=dtype, members=n, heads=True)]


def scaling_cases(args, work: Path) -> list:
    """Each tier's artifact (first dtype, 1 rank) on water boxes of growing size: is µs/atom/step flat?"""
    cases = []
    for replicate in args.scaling:
        data = work / f"scaling-{replicate}.data"
        write_atomic_data(water_box(replicate), data, ["O", "H"])
        for tier in args.tiers:
            cases.append(ml_case(f"ffkit {tier} {args.dtypes[0]} scaling", data, work / f"{tier}_{args.dtypes[0]}.pt",
                                 ["O", "H"], work / f"scaling-{tier}-{replicate}", tier=tier, dtype=args.dtypes[0],
                                 scaling=replicate))
    return cases


def scaling_spreads(records) -> dict:
    """tier -> ({atoms: µs/atom/step}, largest relative deviation from their median) of the scaling runs."""
    runs = [r for r in records if "scaling" in r]
    out = {}
    for tier in dict.fromkeys(r["tier"] for r in runs):
        costs = {r["atoms"]: r["us_per_atom_step"] for r in runs if r["tier"] == tier}
        median = statistics.median(costs.values())
        out[tier] = costs, max(abs(c / median - 1.0) for c in costs.values())
    return out


def scaling_lines(records) -> list[str]:
    """One row per tier: µs/atom/step at each box size and the largest deviation from their median."""
    runs = [r for r in records if "scaling" in r]
    if not runs:
        return []
    sizes = sorted({r["atoms"] for r in runs})
    lines = ["", "## Scaling with the box (1 rank, 1 thread)", "",
             "| tier | " + " | ".join(f"{n} atoms" for n in sizes) + " | largest deviation from the median |",
             "| --- |" + " ---: |" * (len(sizes) + 1)]
    for tier, (costs, spread) in scaling_spreads(records).items():
        lines.append(f"| {tier} {runs[0]['dtype']} | " + " | ".join(f"{costs[n]:.3g}" if n in costs else "–"
                                                                      for n in sizes) + f" | ±{100 * spread:.0f} % |")
    return lines


def target_lines(records) -> list[str]:
    """Issue #18's targets beside what this run measured: met, or the distance to them."""
    rows = []    # (case, measured, target, met)
    for tier, limit in (("fast", 2.0), ("balanced", 10.0), ("accurate", 20.0)):
        for r in records:
            if r.get("tier") == tier and r["case"] == f"ffkit {tier} {r['dtype']}":
                rows.append((f"`{tier}` {r['dtype']}, 1 thread", f"{r['ratio_to_mm']:.2f}× the anchor",
                             f"≤ {limit:g}×", r["ratio_to_mm"] <= limit))
    for r in records:
        if "cost_vs_one_member" in r:
            kind = "heads, " + r["case"].split(", ", 1)[1] if r.get("heads") else "members"
            rows.append((f"committee of {r['members']} `{r['tier']}` {kind}", f"{r['cost_vs_one_member']:.2f}× one "
                         "member", "≤ 1.5×", r["cost_vs_one_member"] <= 1.5))
    for key, what, limit in (("speedup_vs_1_thread", "2 threads, 1 rank", 1.7),
                             ("speedup_vs_1_rank", "`mpirun -np 2`", 1.8)):
        for r in records:
            if key in r:
                rows.append((f"{what}, {r['atoms']} atoms: `{r['case'].split()[1]}`", f"{r[key]:.2f}×",
                             f"≥ {limit:g}×", r[key] >= limit))
    for tier, (costs, spread) in scaling_spreads(records).items():
        rows.append((f"per atom, {min(costs)} → {max(costs)} atoms: `{tier}`", f"±{100 * spread:.0f} %", "±15 %",
                     spread <= 0.15))
    if not rows:
        return []
    lines = ["", "## Issue #18's targets", "", "| case | measured | target | met |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {case} | {measured} | {target} | {'yes' if met else '**no**'} |"
              for case, measured, target, met in rows]
    if any("cost_vs_one_member" in r for r in records):
        lines += ["", "Independent members share the graph and the pair vectors; each runs its own kernel "
                  "(radial functions, moments, invariants, network, adjoint), which is most of a member's step. "
                  "Heads share their descriptors: one evaluation of the radial functions, moments and invariants, "
                  "each head's network, and one adjoint pass for the mean force; each head's own forces (an "
                  "adjoint pass each, but the first head's follow from the mean's) only on the steps that read the "
                  "spread (energy steps, and those `fix pair ... force_std 1` triggers)."]
    return lines


def markdown(records, args) -> str:
    lines = [f"# LAMMPS speed (`pair_style ffkit`), water box, median of {args.repeats} interleaved repeats",
             "",
             ("Wall time of the whole MD step (µs per atom per step); `bare` = the artifact's forward+backward "
              "called from Python on the same frame. ML steps 0.5 fs, SPC/E 2 fs with SHAKE. "
              "Untrained tiers (speed does not depend on weights). `cpu %` = LAMMPS `timer full` CPU share "
              "of the Pair section (< 100 for an MM case means other processes competed for the 2 cores; "
              "one-thread torch cases of the heavier models read 46-58 on an idle machine too)."),
             "",
             "| case | ranks | atoms | µs/atom/step | ns/day | × MM anchor | × bare | cpu % |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in records:
        ns = f"{r['ns_per_day']:.3g}" if r["ns_per_day"] else "–"
        over = f"{r['overhead_vs_bare']:.2f}" if "overhead_vs_bare" in r else "–"
        cpu = f"{r['cpu_percent']:.0f}" if r["cpu_percent"] else "–"
        name = r["case"] + (f" (speed-up {r['speedup_vs_1_rank']:.2f}×)" if "speedup_vs_1_rank" in r else "") \
            + (f" (speed-up {r['speedup_vs_1_thread']:.2f}×)" if "speedup_vs_1_thread" in r else "") \
            + (f" ({r['cost_vs_one_member']:.2f}× one member)" if "cost_vs_one_member" in r else "")
        lines.append(f"| {name} | {r['ranks']} | {r['atoms']} | {r['us_per_atom_step']:.3g} | {ns} | "
                     f"{r['ratio_to_mm']:.3g} | {over} | {cpu} |")
    return "\n".join(lines + scaling_lines(records) + target_lines(records)) + "\n"


if __name__ == "__main__":
    main()
