"""The plugin's hand-written kernel (lammps_plugin/ffkit_kernel.cpp, ffkit_tensor_kernel.cpp) computes what the
artifact's TorchScript model computes: energies, forces, virial, per-atom energies and virials, in real LAMMPS runs.

float64 artifacts: <= 1e-10 relative (both paths are double); float32 artifacts: the kernel stays in
double, so it differs from the float32 TorchScript model by float32 rounding only. Trained artifacts
(benchmarks/models, recompiled: `ffkit compile` gives an older artifact its kernel; a committee runs each
member's), every size the kernel has (fast, balanced and accurate sizes, and the generic code with per-rank
radials and a shared network, with and without 4-body invariants), the equivariant tensor-message term (with
messages over ghost centres, and strictly local), serial against two MPI ranks and one thread against two.
Plus the errors a user can meet.
"""

import base64
import json
import zipfile
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from ffkit.artifact import compile_model, read_metadata, recast_artifact
from ffkit.model.tiers import build_model
from lammps_harness import error_line, lammps_env, lammps_single_point, run_lmp, single_point_script, write_data, \
    write_toy_artifact

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "benchmarks" / "models"
# a 3-body term of a size no tier has: the generic kernel, per-rank radials, one network for all elements
GENERIC = {"three_body": {"type": "three_body", "cutoff": 4.5, "n_basis": 6, "n_channels": 5, "l_max": 2,
                          "hidden": [24, 12], "radial_per_rank": True, "shared_readout": True}}


def _water(reference_data, index=0):
    return ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=index)


def _ethanols(reference_data, count=6):
    """Several rMD17 ethanol frames side by side in one periodic box (a liquid-like test of real geometry)."""
    atoms = None
    for k in range(count):
        frame = ase.io.read(reference_data / "rmd17_ethanol" / "test_MD.xyz", index=50 * k)
        frame.translate([5.5 * (k % 3), 5.5 * (k // 3), 0.3 * k])
        atoms = frame if atoms is None else atoms + frame
    atoms.set_cell([16.5, 11.0, 7.5])
    atoms.pbc = True
    atoms.wrap()
    return atoms


def _both_paths(tmp_path, atoms, symbols, artifact, nprocs=1, threads=1):
    out = {}
    for path in ("kernel", "torchscript"):
        pair = f"pair_style ffkit threads {threads} path {path}\npair_coeff * * {artifact} {' '.join(symbols)}"
        out[path] = lammps_single_point(tmp_path / f"{path}-{nprocs}-{threads}", atoms, symbols, pair,
                                        nprocs=nprocs)
    return out["kernel"], out["torchscript"]


def _worst(a, b):
    """Largest relative difference of every quantity (scale: the largest magnitude of b)."""
    return {name: float(np.abs(np.asarray(a[name]) - np.asarray(b[name])).max() / max(np.abs(b[name]).max(), 1e-300))
            for name in ("energy", "forces", "virial", "energies", "virials")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The committed mm, fast, balanced, accurate and equivariant artifacts, recompiled in float64
    (they gain a kernel)."""
    d = tmp_path_factory.mktemp("trained")
    out = {}
    for name in ("rmd17_ethanol_fast", "rmd17_ethanol_balanced", "water_deepmd_fast", "rmd17_ethanol_mm",
                 "rmd17_ethanol_accurate", "water_deepmd_accurate", "rmd17_ethanol_accurate_x2",
                 "rmd17_ethanol_equivariant"):
        meta = recast_artifact(MODELS / f"{name}.pt", d / f"{name}.pt", "float64")
        assert "kernel" in meta["paths"], meta["paths"]
        out[name] = d / f"{name}.pt"
    return out


@pytest.mark.parametrize("name", ["rmd17_ethanol_fast", "rmd17_ethanol_balanced", "rmd17_ethanol_mm",
                                  "rmd17_ethanol_accurate", "rmd17_ethanol_accurate_x2"])
def test_kernel_equals_torchscript_on_trained_ethanol_models(tmp_path, reference_data, trained, name):
    kernel, torchscript = _both_paths(tmp_path, _ethanols(reference_data), ["C", "O", "H"], trained[name])
    assert "hand-written kernel" in kernel["output"] and "TorchScript)" in torchscript["output"]
    worst = _worst(kernel, torchscript)
    assert max(worst.values()) <= 1e-10, worst


@pytest.mark.parametrize("name", ["water_deepmd_fast", "water_deepmd_accurate"])
def test_kernel_equals_torchscript_on_trained_water_models_in_real_units(tmp_path, reference_data, trained, name):
    atoms = _water(reference_data, 3)
    runs = {}
    for path in ("kernel", "torchscript"):
        pair = f"pair_style ffkit path {path}\npair_coeff * * {trained[name]} O H"
        runs[path] = lammps_single_point(tmp_path / path, atoms, ["O", "H"], pair, units="real")
    worst = _worst(runs["kernel"], runs["torchscript"])
    assert max(worst.values()) <= 1e-10, worst


@pytest.mark.parametrize("kind", ["three_body", "many_body"])
def test_generic_kernel_with_per_rank_radials_and_a_shared_network(tmp_path, reference_data, kind):
    spec = {"type": kind, **({"n_coupled": 3} if kind == "many_body" else {})}
    model = build_model(None, [1, 8], terms={"pair": {"type": "pair", "cutoff": 4.5, "n_basis": 8},
                                             "three_body": {**GENERIC["three_body"], **spec}})
    meta = compile_model(model, tmp_path / "generic.pt", dtype="float64")
    assert meta["paths"]["kernel"]["terms"] == ["pair_table", kind]
    kernel, torchscript = _both_paths(tmp_path, _water(reference_data, 7), ["O", "H"], tmp_path / "generic.pt")
    worst = _worst(kernel, torchscript)
    assert max(worst.values()) <= 1e-10, worst


def test_two_moment_terms_of_different_sizes_share_the_kernels_buffers(tmp_path, reference_data):
    """A generic 3-body term beside `fast`'s: each centre's buffers are sized for the larger one."""
    model = build_model(None, [1, 8], terms={"pair": {"type": "pair", "cutoff": 4.5, "n_basis": 8},
                                             "small": {"type": "three_body", "cutoff": 3.0, "n_basis": 4,
                                                       "n_channels": 3, "l_max": 1, "hidden": [8]},
                                             "fast": {"type": "three_body", "cutoff": 4.5, "n_basis": 8,
                                                      "n_channels": 8, "l_max": 3, "hidden": [16]}})
    meta = compile_model(model, tmp_path / "two.pt", dtype="float64")
    assert meta["paths"]["kernel"]["terms"] == ["pair_table", "three_body", "three_body"]
    kernel, torchscript = _both_paths(tmp_path, _water(reference_data, 3), ["O", "H"], tmp_path / "two.pt")
    worst = _worst(kernel, torchscript)
    assert max(worst.values()) <= 1e-10, worst


def test_float32_artifact_kernel_differs_by_float32_rounding_only(tmp_path, reference_data):
    meta = recast_artifact(MODELS / "water_deepmd_fast.pt", tmp_path / "fast32.pt", "float32")
    assert meta["dtype"] == "float32" and "kernel" in meta["paths"]
    kernel, torchscript = _both_paths(tmp_path, _water(reference_data, 5), ["O", "H"], tmp_path / "fast32.pt")
    worst = _worst(kernel, torchscript)
    assert max(worst.values()) <= 2e-5, worst
    assert max(worst.values()) > 1e-12, "float32 TorchScript cannot equal a double kernel exactly"


def _tensor_messages_model(interactions):
    """`accurate` plus a small tensor-message term, with every weight moved off its initial value."""
    torch.manual_seed(5)
    model = build_model("accurate", [1, 6, 8], terms={"tensors": {
        "type": "tensor_messages", "cutoff": 4.0, "n_basis": 6, "channels": 5, "interactions": interactions,
        "hidden": [12, 8]}})
    with torch.no_grad():
        for p in model.terms[-1].parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("model", ["fast", "tensor_messages"])
def test_kernel_serial_equals_two_ranks_and_two_threads(tmp_path, reference_data, trained, model):
    """With tensor messages, each rank's ghosts within a cutoff of its atoms are centres of their own: the
    messages they pass make serial equal two ranks."""
    artifact = trained["rmd17_ethanol_fast"]
    if model == "tensor_messages":
        artifact = tmp_path / "tensors.pt"
        compile_model(_tensor_messages_model(1), artifact, dtype="float64")
    atoms = _ethanols(reference_data)
    pair = f"pair_style ffkit path kernel\npair_coeff * * {artifact} C O H"
    serial = lammps_single_point(tmp_path / "serial", atoms, ["C", "O", "H"], pair)
    ranks = lammps_single_point(tmp_path / "ranks", atoms, ["C", "O", "H"], pair, nprocs=2)
    threads = lammps_single_point(tmp_path / "threads", atoms, ["C", "O", "H"],
                                  pair.replace("path kernel", "threads 2 path kernel"))
    assert max(_worst(ranks, serial).values()) <= 1e-10
    # each centre is one thread's work, and forces are summed serially: threads change nothing
    assert max(_worst(threads, serial).values()) == 0.0


@pytest.mark.parametrize("interactions", [1, 0], ids=["messages", "local"])
def test_tensor_message_kernel_equals_torchscript(tmp_path, reference_data, interactions):
    """The equivariant tensor term's own kernel (ffkit_tensor_kernel.cpp): with messages, on the ghost
    centres too (two cutoffs of ghosts), and strictly local."""
    meta = compile_model(_tensor_messages_model(interactions), tmp_path / "tensors.pt", dtype="float64")
    assert meta["paths"]["kernel"]["terms"] == ["pair_table", "many_body", "tensor_messages"]
    assert meta["layers"] == 1 + interactions
    kernel, torchscript = _both_paths(tmp_path, _ethanols(reference_data), ["C", "O", "H"], tmp_path / "tensors.pt")
    assert "tensors (tensor_messages)" in kernel["output"] and "TorchScript)" in torchscript["output"]
    worst = _worst(kernel, torchscript)
    assert max(worst.values()) <= 1e-10, worst


def test_trained_tensor_message_model_kernel_equals_torchscript(tmp_path, reference_data, trained):
    kernel, torchscript = _both_paths(tmp_path, _ethanols(reference_data), ["C", "O", "H"],
                                      trained["rmd17_ethanol_equivariant"])
    worst = _worst(kernel, torchscript)
    assert max(worst.values()) <= 1e-10, worst


@pytest.mark.parametrize("name", ["water_deepmd_fast", "water_deepmd_accurate"])
def test_threads_that_split_a_block_of_centres_change_no_bit(tmp_path, reference_data, trained, name):
    """190 atoms: two threads take 95 centres each, so the blocks of eight centres whose networks run
    together fall differently than in one thread; no centre's numbers may depend on its block."""
    atoms = _water(reference_data)
    del atoms[[190, 191]]
    pair = f"pair_style ffkit path kernel\npair_coeff * * {trained[name]} O H"
    one = lammps_single_point(tmp_path / "one", atoms, ["O", "H"], pair)
    two = lammps_single_point(tmp_path / "two", atoms, ["O", "H"], pair.replace("path kernel", "threads 2 path kernel"))
    assert max(_worst(two, one).values()) == 0.0


def test_path_kernel_refuses_an_artifact_without_one(tmp_path, reference_data):
    toy = write_toy_artifact(tmp_path / "toy.pt")
    write_data(tmp_path / "system.data", _water(reference_data), ["O", "H"])
    out = run_lmp(tmp_path, single_point_script("system.data", f"pair_style ffkit path kernel\npair_coeff * * {toy} O H"),
                  expect_ok=False)
    assert "'path kernel' but" in error_line(out) and "carries no kernel.json" in error_line(out)
    out = run_lmp(tmp_path, single_point_script("system.data", f"pair_style ffkit path fastest\npair_coeff * * {toy} O H"),
                  expect_ok=False)
    assert "'path' takes auto, kernel or torchscript, not 'fastest'" in error_line(out)


def _with_kernel_spec(source: Path, out: Path, change) -> Path:
    """A copy of the artifact `source` whose kernel.json is change(spec)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("extra/kernel.json"):
                data = json.dumps(change(json.loads(data))).encode()
            zout.writestr(item, data)
    return out


def _decimal_lists(value):
    """A version-2 kernel spec with every base64 array written out as a JSON list (version 1)."""
    if isinstance(value, dict) and set(value) == {"dtype", "base64"}:
        width = "<f4" if value["dtype"] == "float32" else "<f8"
        return np.frombuffer(base64.b64decode(value["base64"]), dtype=width).astype(float).tolist()
    if isinstance(value, dict):
        return {k: _decimal_lists(v) for k, v in value.items()}
    return [_decimal_lists(v) for v in value] if isinstance(value, list) else value


def test_version_1_kernel_files_still_run(tmp_path, reference_data, trained):
    old = _with_kernel_spec(trained["water_deepmd_fast"], tmp_path / "v1.pt",
                            lambda spec: {**_decimal_lists(spec), "version": 1})
    atoms = _water(reference_data, 2)
    runs = {name: lammps_single_point(tmp_path / name, atoms, ["O", "H"],
                                      f"pair_style ffkit path kernel\npair_coeff * * {path} O H")
            for name, path in (("v1", old), ("v2", trained["water_deepmd_fast"]))}
    assert max(_worst(runs["v1"], runs["v2"]).values()) == 0.0


def test_corrupted_kernel_file_is_named_with_its_field(tmp_path, reference_data, trained):
    def truncate(spec):  # three float64 numbers fewer
        weights = spec["terms"][1]["radial_weights"]
        weights["base64"] = base64.b64encode(base64.b64decode(weights["base64"])[:-24]).decode()
        return spec

    broken = _with_kernel_spec(trained["water_deepmd_fast"], tmp_path / "broken.pt", truncate)
    write_data(tmp_path / "system.data", _water(reference_data), ["O", "H"])
    out = run_lmp(tmp_path, single_point_script("system.data", f"pair_style ffkit\npair_coeff * * {broken} O H"),
                  expect_ok=False, env=lammps_env())
    line = error_line(out)
    assert "kernel.json: term 'three_body': 'radial_weights' must hold" in line, line
    assert "path torchscript" in line
    # the TorchScript model in the same file still runs when asked for
    run_lmp(tmp_path, single_point_script("system.data", f"pair_style ffkit path torchscript\npair_coeff * * {broken} O H"))


def test_models_without_a_kernel_say_so_in_their_metadata(tmp_path):
    model = build_model("accurate", [1, 8], terms={"many_body": {"type": "message_passing"}})
    meta = compile_model(model, tmp_path / "states.pt")
    assert "kernel" not in meta["paths"] and meta["paths"]["torchscript"] == ["forward", "forward_pairs"]
    assert read_metadata(tmp_path / "states.pt")["paths"] == meta["paths"]
