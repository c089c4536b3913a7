"""The speed–accuracy front: ffkit tiers measured here, peers placed at their published accuracy.

Cost is µs per atom per MD step inside the engine (x, log scale); error is the force MAE on
held-out frames (y). A point is on the Pareto front when no other point is both faster and
more accurate.
"""

import csv
import json
from collections.abc import Sequence
from pathlib import Path

# Published rMD17 ethanol test errors (meV, meV/Å; 950 train + 50 validation frames; MACE NeurIPS
# 2022 Table 1, Allegro Nat. Commun. 2023 Table 1) and the CPU cost measured on this machine in
# PyTorch 2.13, float32, 1536-atom water at 5 Å, as a multiple of a plain-torch LJ + reaction-field
# MM of 20 µs/atom/step (docs/design.md). A torch-level cost, not an in-LAMMPS one.
TORCH_MM_US_PER_ATOM_STEP = 20.0
PEERS_ETHANOL = [
    {"name": "ANI (1 net)", "f_mae_meV_A": 45.6, "e_mae_meV": 7.7, "cost_factor": 6.0},
    {"name": "Allegro (small)", "f_mae_meV_A": 2.1, "e_mae_meV": 0.4, "cost_factor": 42.0},
    {"name": "NequIP (small)", "f_mae_meV_A": 2.8, "e_mae_meV": 0.4, "cost_factor": 82.0},
    {"name": "PaiNN", "f_mae_meV_A": 10.0, "e_mae_meV": 2.7, "cost_factor": 183.0},
    {"name": "MACE (S)", "f_mae_meV_A": 2.1, "e_mae_meV": 0.4, "cost_factor": 408.0},
]
CHEMICAL_ACCURACY = 43.4  # meV/Å: 1 kcal/mol/Å
PEER_SOURCE = ("accuracy: rMD17 ethanol, MACE NeurIPS 2022 Table 1 / Allegro Nat. Commun. 2023 Table 1 "
               "(official splits); cost: docs/design.md, PyTorch 2.13 CPU float32 1536-atom water, "
               "x 20 µs/atom/step torch MM")


def peer_points() -> list[dict]:
    return [{**p, "us_per_atom_step": p["cost_factor"] * TORCH_MM_US_PER_ATOM_STEP} for p in PEERS_ETHANOL]


def cost_vs_accurate(record: dict) -> float | None:
    """A peers.json record's E+F cost over ffkit `accurate`'s, both timed in one peers.py run (records
    of older runs keep only the ratio)."""
    if record.get("us_per_atom") and record.get("accurate_us_same_run"):
        return record["us_per_atom"] / record["accurate_us_same_run"]
    return record.get("vs_accurate_then")


def read_measured_peers(path, test_hash: str) -> list[dict]:
    """The peers.json records (benchmarks/peers.py) of peers trained and timed here on these test frames;
    ffkit's own rows and records on other test frames are left out."""
    from .errors import FFKitError

    try:
        records = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise FFKitError(f"--peers {path}: not a readable peers.json ({exc}); write it with "
                         "python benchmarks/peers.py") from None
    return [r for r in records if r.get("test_sha256") == test_hash and r.get("us_per_atom") is not None
            and not r["peer"].startswith("ffkit")]


def measured_peer_points(records, accurate_us: float | None = None) -> list[dict]:
    """Points of the records read_measured_peers gives.

    A peer's cost is one energy + forces call through its own ASE calculator on the same box (not an
    MD step inside LAMMPS), timed beside ffkit `accurate`'s call in the same peers.py run. That call is
    `accurate`'s TorchScript artifact, so with `accurate_us` (ffkit `accurate`'s MD step on its
    TorchScript path, timed in this front's run) a peer is placed at that ratio times `accurate_us`:
    machines and runs do not mix."""
    points = []
    for r in records:
        ratio = cost_vs_accurate(r)
        scaled = accurate_us is not None and ratio is not None
        points.append({"name": f"{r['peer']} ({r['budget']} budget)", "f_mae_meV_A": r["f_mae_meV_A"],
                       "e_mae_meV": r["e_mae_meV"], "measured": True, "scaled_to_accurate": scaled,
                       "us_per_atom_step": ratio * accurate_us if scaled else r["us_per_atom"]})
    return points


def pareto_front(points: Sequence[dict], x: str = "us_per_atom_step", y: str = "f_mae_meV_A") -> list[dict]:
    """Points not dominated by any other (faster and at least as accurate), sorted by cost."""
    ordered = sorted(points, key=lambda p: (p[x], p[y]))
    front, best = [], float("inf")
    for p in ordered:
        if p[y] < best:
            front.append(p)
            best = p[y]
    return front


def plot(records: Sequence[dict], mm_us: float, path: Path, title: str, peers: Sequence[dict] = (),
         anchor_label: str = "MM anchor") -> None:
    """Cost (log x) against force MAE (log y): tiers, their front, the anchor, chemical accuracy, peers."""
    from .plots import figure

    fig, ax = figure(figsize=(8, 5.5))
    xs = [r["us_per_atom_step"] for r in records]
    ys = [r["f_mae_meV_A"] for r in records]
    ax.scatter(xs, ys, s=60, color="C0", zorder=3, label="ffkit tiers (measured here)")
    previous, below = 0.0, True
    for r in sorted(records, key=lambda r: r["us_per_atom_step"]):
        # labels of points within 4x the cost of the one before alternate above and below, so both stay readable
        below = not below if r["us_per_atom_step"] < 4.0 * previous else False
        ax.annotate(f"{r['tier']} ({r['us_per_atom_step'] / mm_us:.3g}× MM)", (r["us_per_atom_step"], r["f_mae_meV_A"]),
                    textcoords="offset points", xytext=(6, -13 if below else 4), fontsize=9)
        previous = r["us_per_atom_step"]
    front = pareto_front(records)
    ax.step([p["us_per_atom_step"] for p in front], [p["f_mae_meV_A"] for p in front], where="post", color="C0",
            lw=1, alpha=0.7, label="Pareto front (ffkit)")
    published = [p for p in peers if not p.get("measured")]
    measured = [p for p in peers if p.get("measured")]
    if published:
        ax.scatter([p["us_per_atom_step"] for p in published], [p["f_mae_meV_A"] for p in published], marker="s",
                   facecolors="none", edgecolors="C3", s=50,
                   label="peers, published: accuracy from papers (GPU, days), torch cost measured here")
    if measured:
        ax.scatter([p["us_per_atom_step"] for p in measured], [p["f_mae_meV_A"] for p in measured], marker="s",
                   color="C1", s=50, label="peers, measured here: trained on the same frames, E+F call cost")
    for p in peers:
        ax.annotate(p["name"], (p["us_per_atom_step"], p["f_mae_meV_A"]), textcoords="offset points",
                    xytext=(6, -10), fontsize=8, color="C1" if p.get("measured") else "C3")
    ax.axvline(mm_us, color="k", ls="--", lw=1, label=f"{anchor_label} ({mm_us:.3g} µs/atom/step)")
    ax.axhline(CHEMICAL_ACCURACY, color="C2", ls=":", lw=1, label="chemical accuracy, 1 kcal/mol/Å (43.4 meV/Å)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cost in LAMMPS (µs per atom per MD step, 1 core)")
    ax.set_ylabel("force MAE on held-out frames (meV/Å)")
    ax.margins(x=0.12, y=0.12)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.savefig(path, dpi=130, bbox_inches="tight")


CSV_KEYS = ["tier", "us_per_atom_step", "ratio_to_mm", "ns_per_day", "f_mae_meV_A", "f_rmse_meV_A", "e_mae_meV",
            "e_rmse_meV", "n_params", "dtype", "atoms", "model", "on_front"]


def write_tables(records: Sequence[dict], peers: Sequence[dict], stem: Path, anchor: dict | None = None,
                 setup: dict | None = None) -> None:
    """stem.csv, stem.json and stem.md: one row per tier, then the MM anchor, then the peers (json, md).

    `setup` (what was measured on what, as short strings) goes into the json and above the md table.
    """
    front = {id(p) for p in pareto_front(records)}
    rows = [{**r, "on_front": id(r) in front} for r in records]
    anchor_row = {**anchor, "tier": "mm-anchor", "ratio_to_mm": 1.0} if anchor else None
    with open(f"{stem}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_KEYS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows + ([anchor_row] if anchor_row else []))
    Path(f"{stem}.json").write_text(json.dumps({"setup": setup or {}, "tiers": rows, "anchor": anchor_row,
                                                "peers": list(peers),
                                                "peer_source": PEER_SOURCE if peers else None},
                                               indent=1) + "\n")
    lines = [f"- {key}: {value}" for key, value in (setup or {}).items()]
    lines += ["", ("| model | dtype | µs/atom/step | × MM anchor | ns/day | F MAE (meV/Å) | F RMSE (meV/Å) | "
              "E MAE (meV) | E RMSE (meV) | params | on front |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| ffkit `{r['tier']}` | {r.get('dtype', '–')} | {r['us_per_atom_step']:.3g} | "
                     f"{_num(r.get('ratio_to_mm'), '.3g')} | {_num(r.get('ns_per_day'), '.3g')} | "
                     f"{r['f_mae_meV_A']:.1f} | {_num(r.get('f_rmse_meV_A'), '.1f')} | {r['e_mae_meV']:.1f} | "
                     f"{_num(r.get('e_rmse_meV'), '.1f')} | {r.get('n_params', '–')} | "
                     f"{'yes' if r['on_front'] else ''} |")
    if anchor_row:
        lines.append(f"| MM anchor: SPC/E + PPPM | – | {anchor_row['us_per_atom_step']:.3g} | 1 | "
                     f"{_num(anchor_row.get('ns_per_day'), '.3g')} | – | – | – | – | – | |")
    for p in peers:
        where = "measured here, E+F call" if p.get("measured") else "published; torch"
        ratio = p["us_per_atom_step"] / anchor_row["us_per_atom_step"] if anchor_row and p.get(
            "scaled_to_accurate") else None
        lines.append(f"| {p['name']} ({where}) | float32 | {p['us_per_atom_step']:.0f} | {_num(ratio, '.3g')} | – | "
                     f"{p['f_mae_meV_A']:.1f} | – | {p['e_mae_meV']:.1f} | – | – | |")
    if any(not p.get("measured") for p in peers):
        lines.append(f"\nPublished peers: {PEER_SOURCE}.")
    if any(p.get("measured") for p in peers):
        scaled = any(p.get("scaled_to_accurate") for p in peers)
        lines.append("\nMeasured peers: trained and tested here on the same frames by benchmarks/peers.py "
                     "(benchmarks/results/peers.md); their cost is one energy + forces call on the same box "
                     "through their ASE calculator, 1 thread, not an MD step in LAMMPS"
                     + ("; shown as its ratio to ffkit `accurate`'s call in that run times `accurate`'s MD step in "
                        "this one, on its TorchScript path (the path that call takes)" if scaled else "") + ".")
    Path(f"{stem}.md").write_text("\n".join(lines).lstrip("\n") + "\n")


def _num(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)
