"""`ffkit compile` proves its artifact: the engine it targets computes one real frame, and its
energy and forces must match the Python model's (docs/artifact.md, `engine_parity`).

The reference is the Python model when a checkpoint was compiled (float64, pair terms not
tabulated: the check covers tabulation, TorchScript, the precision and the engine's neighbour
list, ghosts and unit conversion), else the artifact run from Python (ASE calculator). The
tolerance is relative to the frame's largest force and energy scale, set by the artifact's dtype.
"""

from typing import Any, Dict, Optional

import numpy as np

from .errors import FFKitError

# largest |dF| / max|F| (and |dE| / (|E| + n_atoms eV)) an artifact may show against its reference
TOLERANCE = {"float64": 1e-6, "float32": 1e-4}


def reference_energy_forces(frame, model=None, artifact=None):
    """(energy eV, forces eV/Å) of `frame` from the float64 Python model, or else from `artifact` in Python."""
    import copy

    import torch

    if model is not None:
        from .graphs import frame_graph
        from .predict import energy_and_forces

        model64 = copy.deepcopy(model).to(torch.float64).eval()
        energy, forces = energy_and_forces(model64, frame_graph(frame, model64.species, model64.cutoff))
        return float(energy.detach()[0]), forces.detach().numpy()
    from .calculator import FFKitCalculator

    atoms = frame.to_atoms()
    atoms.calc = FFKitCalculator(artifact)
    return float(atoms.get_potential_energy()), atoms.get_forces()


def unchecked(meta: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The `engine_parity` record of an artifact its engine cannot run (an engine whose adapter runs no single
    points; a committee of message-passing models, which `pair_style ffkit` refuses); None if it can."""
    from .engines import adapters

    engine = meta["engine"]
    if "committee" in meta and int(meta.get("layers", 1)) > 1:
        return {"engine": engine, "checked": False,
                "reason": "pair_style ffkit does not run a committee of message-passing models; this committee runs "
                          "from Python (the ASE calculator, a teacher of ffkit distill with --sampler)"}
    if hasattr(adapters().get(engine), "single_point"):
        return None
    return {"engine": engine, "checked": False,
            "reason": f"the {engine} adapter runs no single points yet; its calling convention is tested against "
                      "the Python model by ffkit's test suite"}


def check(artifact, meta: Dict[str, Any], frame, where: str, workdir, model=None) -> Dict[str, Any]:
    """Run `artifact` in its engine on `frame`, compare with the reference; the `engine_parity` record.

    Raises FFKitError when they disagree beyond TOLERANCE[dtype]."""
    from .engines import adapters

    adapter = adapters()[meta["engine"]]
    energy, forces = adapter.single_point(artifact, frame.to_atoms(), meta["species_symbols"], workdir)
    ref_energy, ref_forces = reference_energy_forces(frame, model=model, artifact=None if model else artifact)
    force_scale = max(float(np.abs(ref_forces).max()), 1e-3)
    force_error = float(np.abs(forces - ref_forces).max())
    energy_error = abs(energy - ref_energy)
    record = {
        "engine": meta["engine"], "checked": True, "frame": where, "n_atoms": len(frame.numbers),
        "reference": "python model (checkpoint, float64)" if model is not None else "artifact in python (ASE)",
        "energy_eV": energy, "energy_abs_error_eV": energy_error,
        "force_max_abs_error_eV_A": force_error, "force_max_rel_error": force_error / force_scale,
        "tolerance_rel": TOLERANCE[meta["dtype"]],
    }
    record["passed"] = bool(record["force_max_rel_error"] <= record["tolerance_rel"]
                            and energy_error <= record["tolerance_rel"] * (abs(ref_energy) + len(frame.numbers)))
    if not record["passed"]:
        raise FFKitError(f"{meta['engine']} disagrees with the {record['reference']} on {where}: energy off by "
                         f"{energy_error:.3g} eV, forces by up to {force_error:.3g} eV/Å "
                         f"({record['force_max_rel_error']:.2g} of the largest force; tolerance "
                         f"{record['tolerance_rel']:g} for {meta['dtype']}); the artifact was not written. "
                         "Please report it with the checkpoint; --no-check writes it unproven")
    return record


def proof_frame(frame_file: Optional[str], checkpoint: Optional[Dict[str, Any]] = None,
                source_meta: Optional[Dict[str, Any]] = None):
    """(frame, where, source): frame 0 of --frame, else of the checkpoint's training data (in its units),
    else of the file the source artifact was proven on; `source` ({"file", units}) goes into the record
    so that recompiling the artifact finds the same frame."""
    from pathlib import Path

    from .datasets import read_frames

    source = {"file": frame_file}
    if frame_file is None:
        config = (checkpoint or {}).get("config") or {}
        earlier = ((source_meta or {}).get("engine_parity") or {}).get("frame_source") or {}
        source = {"file": config.get("data"), **{k: config[k] for k in ("energy_unit", "length_unit") if config.get(k)}}
        if not source["file"] and earlier:
            source = dict(earlier)
        if not source["file"] or not Path(source["file"]).is_file():
            raise FFKitError("no frame to prove the artifact on: give --frame FILE (any structure the model "
                             "knows, e.g. a training frame)" + (f"; the training data {source['file']} is not here"
                                                                 if source["file"] else ""))
    source["file"] = str(Path(source["file"]).resolve())
    units = {k: v for k, v in source.items() if k != "file"}
    frame = read_frames(source["file"], index=0, require_energy=False, require_forces=False, **units)[0]
    return frame, f"frame 0 of {source['file']}", source


def write_proven(build, out, *, frame_file: Optional[str] = None, checkpoint=None, source_meta=None, model=None,
                 skip: bool = False) -> Dict[str, Any]:
    """Write an artifact at `out` only once its engine agrees with the reference; its metadata.

    `build(draft_path) -> metadata` writes the draft (compile_model, recast, committee, NNPot);
    the draft is proven (`check`) on `proof_frame(frame_file, checkpoint, source_meta)` unless
    `skip`, `engine_parity` goes into its metadata, and it replaces `out` atomically."""
    import os
    import tempfile
    from pathlib import Path

    from .artifact import write_metadata

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ffkit_compile_", dir=out.parent) as tmp:
        draft = Path(tmp) / out.name
        meta = build(draft)
        skipped = {"checked": False, "reason": "ffkit compile --no-check"} if skip else None
        meta["engine_parity"] = skipped or unchecked(meta)
        if meta["engine_parity"] is None:
            frame, where, source = proof_frame(frame_file, checkpoint, source_meta)
            meta["engine_parity"] = {**check(draft, meta, frame, where, Path(tmp) / "engine", model=model),
                                     "frame_source": source}
        write_metadata(draft, meta)
        os.replace(draft, out)
    return meta

