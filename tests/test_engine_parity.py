"""`ffkit compile` proves its artifact in the real `lmp` (run 0) before writing it, and refuses one
that disagrees with the Python model; `ffkit info` shows the proof."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ffkit.artifact import compile_model, read_metadata
from ffkit.checkpoints import CHECKPOINT_FORMAT
from ffkit.cli import main as ffkit_main
from ffkit.datasets import read_frames
from ffkit.engine_parity import check
from ffkit.errors import FFKitError
from ffkit.model.tiers import resolve_terms
from model_helpers import perturbed_model


def _checkpoint(path, model, data):
    spec = {"tier": "balanced", "terms": resolve_terms("balanced"), "species": list(model.species),
            "reference_energies": [0.0] * len(model.species), "avg_neighbors": 6.0}
    torch.save({"format": CHECKPOINT_FORMAT, "model_spec": spec, "model_state": model.state_dict(),
                "history": [{}], "config": {"data": str(data)}}, path)
    return path


@pytest.fixture(scope="module")
def water(reference_data):
    return reference_data / "water_deepmd" / "water.extxyz"


@pytest.mark.slow
@pytest.mark.parametrize("dtype, limit", [("float64", 1e-7), ("float32", 1e-4)])
def test_compile_records_engine_parity_on_the_training_data(tmp_path, water, dtype, limit):
    ckpt = _checkpoint(tmp_path / "best.pt", perturbed_model("balanced", [1, 8]), water)
    assert ffkit_main(["compile", str(ckpt), "--out", str(tmp_path / "m.pt"), "--dtype", dtype]) == 0
    parity = read_metadata(tmp_path / "m.pt")["engine_parity"]
    assert parity["checked"] and parity["passed"] and parity["engine"] == "lammps"
    assert parity["frame"] == f"frame 0 of {water}" and parity["n_atoms"] == 192
    assert parity["frame_source"] == {"file": str(water)}
    assert parity["reference"] == "python model (checkpoint, float64)"
    assert 0 <= parity["force_max_rel_error"] < limit and parity["tolerance_rel"] >= parity["force_max_rel_error"]
    info = subprocess.run([sys.executable, "-m", "ffkit", "info", str(tmp_path / "m.pt")], capture_output=True,
                          text=True, check=True)
    assert json.loads(info.stdout)["engine_parity"] == parity
    assert not list(tmp_path.glob(".ffkit_compile_*"))  # the draft and the engine's files are gone


@pytest.mark.slow
def test_an_artifact_that_disagrees_with_its_reference_is_refused(tmp_path, water):
    # the draft is one model, the reference another: LAMMPS runs the draft, the comparison must fail
    frame = read_frames(water, index=0)[0]
    draft, other = perturbed_model("balanced", [1, 8], seed=1), perturbed_model("balanced", [1, 8], seed=2)
    meta = compile_model(draft, tmp_path / "draft.pt")
    with pytest.raises(FFKitError, match=r"lammps disagrees with the python model .* on frame 0: energy off by"):
        check(tmp_path / "draft.pt", meta, frame, "frame 0", tmp_path / "engine", model=other)
    # the same model passes: what is left is the spline of the pair terms (~1e-8 of the largest force)
    record = check(tmp_path / "draft.pt", meta, frame, "frame 0", tmp_path / "engine", model=draft)
    assert record["force_max_rel_error"] < 1e-7  # the pair spline, not rounding


def test_compile_without_a_frame_says_how_to_give_one(tmp_path, capsys):
    model = perturbed_model("balanced", [1, 8])
    ckpt = _checkpoint(tmp_path / "best.pt", model, tmp_path / "gone.xyz")
    assert ffkit_main(["compile", str(ckpt), "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "give --frame FILE" in err and "gone.xyz is not here" in err and not (tmp_path / "m.pt").exists()
    assert ffkit_main(["compile", str(ckpt), "--out", str(tmp_path / "m.pt"), "--no-check"]) == 0
    assert read_metadata(tmp_path / "m.pt")["engine_parity"] == {"checked": False, "reason": "ffkit compile --no-check"}


@pytest.mark.slow
def test_a_molecule_is_proven_in_a_box_wider_than_its_reach(tmp_path, reference_data):
    ethanol = reference_data / "rmd17_ethanol" / "test_MD.xyz"
    ckpt = _checkpoint(tmp_path / "best.pt", perturbed_model("balanced", [1, 6, 8]), ethanol)
    assert ffkit_main(["compile", str(ckpt), "--out", str(tmp_path / "m.pt")]) == 0
    parity = read_metadata(tmp_path / "m.pt")["engine_parity"]
    assert parity["n_atoms"] == 9 and parity["force_max_rel_error"] < 1e-7
    assert np.isfinite(parity["energy_eV"])
