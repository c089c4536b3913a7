"""Runs inside a peer's own virtual environment (made by benchmarks/peers.py), never in ffkit's.

    PEER_VENV/bin/python benchmarks/peer_worker.py predict PEER MODEL FRAMES.xyz OUT.npz
    PEER_VENV/bin/python benchmarks/peer_worker.py time PEER MODEL BOX.xyz OUT.json [--repeats 3]

`predict` writes the peer's energies (eV) and forces (eV/Å) on every frame; `time` calls the
peer's ASE calculator for energy and forces on one box (1 thread; neighbour list included, as in
MD; median of repeats after one warm-up call). Only ASE, NumPy and the peer's package are used.
"""

import json
import statistics
import sys
import time

import numpy as np
from ase.io import read


def calculator(peer: str, model: str):
    if peer == "mace":
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=model, device="cpu", default_dtype="float32")
    if peer == "allegro":
        from nequip.integrations.ase import NequIPCalculator

        return NequIPCalculator._from_saved_model(model, device="cpu")  # a checkpoint, run eagerly
    if peer == "deepmd":
        from deepmd.calculator import DP

        return DP(model=model)
    raise SystemExit(f"peer_worker: unknown peer {peer!r}")


def predict(peer: str, model: str, frames_path: str, out: str) -> None:
    calc = calculator(peer, model)
    energies, forces = [], []
    for atoms in read(frames_path, index=":"):
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
    np.savez(out, energy=np.array(energies), forces=np.concatenate(forces))


def time_box(peer: str, model: str, box_path: str, out: str, repeats: int) -> None:
    calc = calculator(peer, model)
    atoms = read(box_path)
    times = []
    for k in range(repeats + 1):
        atoms.calc = calc
        calc.reset()
        start = time.perf_counter()
        atoms.get_forces()
        if k:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    with open(out, "w") as fh:
        json.dump({"atoms": len(atoms), "seconds": seconds, "us_per_atom": 1e6 * seconds / len(atoms)}, fh)


def main(argv) -> int:
    import torch

    torch.set_num_threads(1)
    if len(argv) < 5 or argv[0] not in ("predict", "time"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "predict":
        predict(*argv[1:5])
    else:
        repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
        time_box(*argv[1:5], repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
