"""`ffkit test`: errors of a checkpoint or a compiled artifact on a labelled data set."""

import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

from .artifact import is_artifact
from .datasets import Frame
from .metrics import error_metrics


def evaluate_artifact(path, frames: List[Frame]) -> Dict[str, Any]:
    from ase import Atoms

    from .calculator import FFKitCalculator

    calc = FFKitCalculator(path)
    e_pred, f_pred = [], []
    for frame in frames:
        atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)
        atoms.calc = calc
        e_pred.append(atoms.get_potential_energy())
        f_pred.append(atoms.get_forces())
    return _result(np.array(e_pred), np.concatenate(f_pred), frames)


def evaluate_checkpoint(path, frames: List[Frame]) -> Dict[str, Any]:
    from .checkpoints import load_checkpoint
    from .graphs import collate, frame_graph
    from .predict import energy_and_forces

    model, _ = load_checkpoint(path)
    e_pred, f_pred = [], []
    for batch in _batches(frames):
        graph = collate([frame_graph(f, model.species, model.cutoff) for f in batch])
        energy, forces = energy_and_forces(model, graph)
        e_pred.append(energy.detach().numpy())
        f_pred.append(forces.detach().numpy())
    return _result(np.concatenate(e_pred), np.concatenate(f_pred), frames)


def _batches(frames: List[Frame], max_frames: int = 32, max_atoms: int = 1024) -> List[List[Frame]]:
    """Consecutive frames, at most `max_frames` and (beyond a batch's first frame) `max_atoms` atoms a batch:
    32 frames of 192-atom water through a two-layer model held ~10 GB of autograd graph at once."""
    batches: List[List[Frame]] = []
    atoms = 0
    for frame in frames:
        if batches and len(batches[-1]) < max_frames and atoms + len(frame.numbers) <= max_atoms:
            batches[-1].append(frame)
            atoms += len(frame.numbers)
        else:
            batches.append([frame])
            atoms = len(frame.numbers)
    return batches


def _result(e_pred: np.ndarray, f_pred: np.ndarray, frames: List[Frame]) -> Dict[str, Any]:
    e_ref = np.array([f.energy for f in frames], dtype=np.float64)
    f_ref = np.concatenate([f.forces for f in frames])
    return {"metrics": error_metrics(e_pred, e_ref, f_pred, f_ref), "n_frames": len(frames),
            "e_pred": e_pred, "e_ref": e_ref, "f_pred": f_pred, "f_ref": f_ref}


def evaluate_model(path, frames: List[Frame]) -> Dict[str, Any]:
    with torch.enable_grad():  # forces need autograd, also inside a caller's no_grad; nothing global changes
        return evaluate_artifact(path, frames) if is_artifact(path) else evaluate_checkpoint(path, frames)


def write_json(result: Dict[str, Any], model_path, data_path, out) -> None:
    record = {"model": str(model_path), "data": str(data_path), "n_frames": result["n_frames"], **result["metrics"]}
    Path(out).write_text(json.dumps(record, indent=2) + "\n")
