"""Committee artifacts in LAMMPS: `compute pair ffkit` gives the max and mean force spread, `fix pair ... force_std`
the per-atom spread, both equal to the ASE calculator's on the same frame, the same serial and under
`mpirun -np 2`, and the same on the hand-written kernel (each member's) as on TorchScript; a committee of
identical members is the single model with zero spread. The heads of one model (`heads: 3`) are a committee
whose members share their descriptors: the kernel computes those once, and the members' forces on the steps
that use the spread."""

import re
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from ffkit.artifact import compile_model
from ffkit.calculator import FFKitCalculator
from ffkit.checkpoints import CHECKPOINT_FORMAT
from ffkit.cli import main as ffkit_main
from ffkit.committee import compile_committee
from ffkit.errors import FFKitError
from ffkit.model.tiers import build_model, resolve_terms
from lammps_harness import error_line, read_dump, run_lmp, thermo_rows, write_data, write_toy_artifact

WATER = ("O", "H")


def _member(seed: int, cutoff: float = 4.0):
    torch.manual_seed(seed)
    terms = {name: {"cutoff": cutoff} for name in ("pair", "three_body")}
    return build_model("fast", [1, 8], avg_neighbors=20.0, terms=terms).double()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Single members, a committee of one member three times, and one of three different members (one with
    a shorter cutoff)."""
    d = tmp_path_factory.mktemp("committee")
    singles = []
    for seed, cutoff in ((0, 4.0), (1, 4.0), (2, 3.5)):
        singles.append(d / f"m{seed}.pt")
        compile_model(_member(seed, cutoff), singles[-1])
    compile_committee([singles[0]] * 3, d / "same.pt")
    compile_committee(singles, d / "committee.pt")
    return {"single": singles[0], "members": singles, "same": d / "same.pt", "committee": d / "committee.pt"}


@pytest.fixture(scope="module")
def frame(reference_data):
    return ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=7)


def test_committee_is_the_mean_of_its_members(frame, models):
    """Python side: mean energy and forces, and the spread, of members with their own cutoffs (4 and 3.5 Å)."""
    members = []
    for path in models["members"]:
        atoms = frame.copy()
        atoms.calc = FFKitCalculator(path)
        members.append((atoms.get_potential_energy(), atoms.get_forces()))
    atoms = frame.copy()
    atoms.calc = FFKitCalculator(models["committee"])
    forces = np.array([f for _, f in members])
    assert abs(atoms.get_potential_energy() - np.mean([e for e, _ in members])) <= 1e-10
    np.testing.assert_allclose(atoms.get_forces(), forces.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(atoms.calc.results["forces_std"], np.sqrt(forces.var(0).mean(1)), rtol=0, atol=1e-12)


def _lammps(workdir: Path, atoms, model: Path, nprocs: int = 1, steps: int = 0, pair: str = "",
            thermo: int = 5, fix_pair: str = "1 ffkit force_std 0"):
    """Thermo rows (PotEng, c_dev[1] = max spread, c_dev[2] = mean spread) and the dump (id fx fy fz std)."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_data(workdir / "w.data", atoms, WATER)
    pair = pair or f"pair_style ffkit\npair_coeff * * {model} O H"
    out = run_lmp(workdir, f"""units metal
atom_style atomic
read_data w.data
{pair}
compute dev all pair ffkit
fix std all pair {fix_pair}
velocity all create 300 4928459 loop geom
fix nve all nve
timestep 0.0005
thermo_style custom step pe c_dev[1] c_dev[2]
thermo_modify format float %.17g
thermo {thermo}
dump d all custom 5 dump.std id fx fy fz f_std
dump_modify d sort id format float %.17g
run {steps}
""", nprocs=nprocs)
    return thermo_rows(out), read_dump(workdir / "dump.std")


def test_identical_members_are_the_single_model(tmp_path, frame, models):
    rows, dump = _lammps(tmp_path / "same", frame, models["same"])
    atoms = frame.copy()
    atoms.calc = FFKitCalculator(models["single"])
    assert abs(rows[0]["PotEng"] - atoms.get_potential_energy()) <= 1e-12 * abs(atoms.get_potential_energy())
    forces = atoms.get_forces()
    np.testing.assert_allclose(dump[0][:, 1:4], forces, rtol=0, atol=1e-12 * np.abs(forces).max())
    assert rows[0]["c_dev[1]"] <= 1e-14 and np.abs(dump[0][:, 4]).max() <= 1e-14


def test_spread_equals_ase_calculator(tmp_path, frame, models):
    """Per-atom, max and mean spread after summing ghost forces, float64, <= 1e-8 relative."""
    atoms = frame.copy()
    atoms.calc = FFKitCalculator(models["committee"])
    forces = atoms.get_forces()
    ref = atoms.calc.results["forces_std"]
    assert atoms.calc.results["max_force_std"] > 1e-4  # the members really differ
    # the same committee alone and inside hybrid/overlay (whose comm buffers are sized before pair_coeff)
    overlay = (f"pair_style hybrid/overlay ffkit lj/cut 3.0\npair_coeff * * ffkit {models['committee']} O H\n"
               "pair_coeff * * lj/cut 0.0 1.0")
    for name, pair in (("alone", ""), ("overlay", overlay)):
        rows, dump = _lammps(tmp_path / name, frame, models["committee"], pair=pair)
        std = dump[0][:, 4]
        np.testing.assert_allclose(std, ref, rtol=0, atol=1e-8 * ref.max(), err_msg=name)
        np.testing.assert_allclose(dump[0][:, 1:4], forces, rtol=0, atol=1e-8 * np.abs(forces).max(), err_msg=name)
        assert abs(rows[0]["c_dev[1]"] - ref.max()) <= 1e-8 * ref.max(), name
        assert abs(rows[0]["c_dev[2]"] - ref.mean()) <= 1e-8 * ref.mean(), name
        assert abs(rows[0]["PotEng"] - atoms.get_potential_energy()) <= 1e-8 * abs(atoms.get_potential_energy())


def test_kernel_equals_torchscript(tmp_path, frame, models):
    """Members' kernels averaged in the plugin = the TorchScript forward_committee: forces and spread after
    10 MD steps, float64, <= 1e-10 relative."""
    runs = {}
    for path in ("kernel", "torchscript"):
        pair = f"pair_style ffkit path {path}\npair_coeff * * {models['committee']} O H"
        runs[path] = _lammps(tmp_path / path, frame, models["committee"], steps=10, pair=pair)
    (kernel_rows, kernel), (script_rows, script) = runs["kernel"], runs["torchscript"]
    for a, b in zip(kernel_rows, script_rows):
        for key in ("c_dev[1]", "c_dev[2]", "PotEng"):
            assert abs(a[key] - b[key]) <= 1e-10 * abs(b[key]), (key, a, b)
    for step in (0, 10):
        np.testing.assert_allclose(kernel[step][:, 1:5], script[step][:, 1:5], rtol=0,
                                   atol=1e-10 * np.abs(script[step][:, 1:4]).max())


def test_serial_equals_two_ranks(tmp_path, frame, models):
    serial_rows, serial = _lammps(tmp_path / "serial", frame, models["committee"], steps=10)
    parallel_rows, parallel = _lammps(tmp_path / "np2", frame, models["committee"], nprocs=2, steps=10)
    assert len(serial_rows) == len(parallel_rows) == 3
    for a, b in zip(serial_rows, parallel_rows):
        for key in ("c_dev[1]", "c_dev[2]", "PotEng"):
            assert abs(a[key] - b[key]) <= 1e-10 * abs(a[key]), (key, a, b)
    for step in (0, 10):
        np.testing.assert_allclose(parallel[step][:, 4], serial[step][:, 4], rtol=0, atol=1e-12)


def _checkpoint(path: Path, model, data: Path, tier: str = "fast", terms=None) -> Path:
    """A checkpoint as training writes it; `ffkit compile` proves its artifact on frame 0 of `data`."""
    spec = {"tier": tier, "terms": resolve_terms(tier, terms), "species": list(model.species),
            "reference_energies": [0.0] * len(model.species), "avg_neighbors": 20.0}
    torch.save({"format": CHECKPOINT_FORMAT, "model_spec": spec, "model_state": model.state_dict(),
                "history": [{"valid_f_mae": 0.1}], "data_hash": "abc", "config": {"data": str(data)}}, path)
    return path


def test_cli_compiles_checkpoints_and_artifacts(tmp_path, models, capsys, reference_data):
    water = reference_data / "water_deepmd" / "water.extxyz"
    a = _checkpoint(tmp_path / "a.pt", build_model("fast", [1, 8], avg_neighbors=20.0), water)
    b = _checkpoint(tmp_path / "b.pt", build_model("fast", [1, 8], avg_neighbors=20.0), water)
    assert ffkit_main(["compile", str(a), str(b), str(models["single"]), "--out", str(tmp_path / "c.pt")]) == 0
    assert "committee of 3 models" in capsys.readouterr().out
    calc = FFKitCalculator(tmp_path / "c.pt")
    committee = calc.metadata["committee"]
    assert committee["size"] == 3 and [m["source"] for m in committee["members"]] == ["a.pt", "b.pt", "m0.pt"]
    assert [m["tier"] for m in committee["members"]] == ["fast", "fast", None]  # m0.pt: compiled without one
    assert calc.metadata["tier"] is None and committee["members"][0]["test_metrics"] == {"valid_f_mae": 0.1}
    parity = calc.metadata["engine_parity"]  # proven in lmp on the first member's training data
    assert parity["checked"] and parity["passed"] and parity["frame"] == f"frame 0 of {water}"
    assert ffkit_main(["compile", str(a), str(b), "--engine", "gromacs", "--out", str(tmp_path / "g.pt")]) == 2
    assert "--engine lammps only" in capsys.readouterr().err


def test_bench_labels_a_committee_by_its_tier_and_size(tmp_path, reference_data):
    from ffkit.bench import check_models

    water = reference_data / "water_deepmd" / "water.extxyz"
    a = _checkpoint(tmp_path / "a.pt", build_model("fast", [1, 8], avg_neighbors=20.0), water)
    b = _checkpoint(tmp_path / "b.pt", build_model("fast", [1, 8], avg_neighbors=20.0), water)
    assert ffkit_main(["compile", str(a), "--out", str(tmp_path / "single.pt")]) == 0
    assert ffkit_main(["compile", str(a), str(b), "--out", str(tmp_path / "pair.pt")]) == 0
    labels = [label for label, _, _ in check_models([tmp_path / "pair.pt", tmp_path / "single.pt"], {"H", "O"})]
    assert labels == ["fast", "fast_x2"]


def test_members_that_disagree_are_refused(tmp_path, models):
    ethanol = tmp_path / "ethanol.pt"
    compile_model(build_model("fast", [1, 6, 8]), ethanol)
    with pytest.raises(FFKitError, match=r"ethanol.pt: committee members must share 'species'.*\['H', 'C', 'O'\]"):
        compile_committee([models["single"], ethanol], tmp_path / "c.pt")
    kcal = write_toy_artifact(tmp_path / "kcal.pt", ("H", "O"), cutoff=4.0, metadata={
        "units": {"energy": "kcal/mol", "length": "angstrom", "force": "kcal/mol/angstrom"}})
    with pytest.raises(FFKitError, match="kcal.pt: committee members must share 'units'"):
        compile_committee([models["single"], kcal], tmp_path / "c.pt")
    f32 = tmp_path / "f32.pt"
    compile_model(_member(0), f32, dtype="float32")
    with pytest.raises(FFKitError, match="f32.pt: artifact dtype is float32"):
        compile_committee([models["single"], f32], tmp_path / "c.pt")


def test_a_committee_member_may_be_a_committee_and_weighs_as_one_model(tmp_path, frame, models):
    """An ensemble of unlike models: the inner committee counts once (its mean); the kernel averages equal
    weights, so the nested committee carries none and runs on TorchScript, in Python and in lmp alike."""
    meta = compile_committee([models["members"][1], models["committee"]], tmp_path / "nested.pt")
    assert meta["committee"]["size"] == 2 and meta["committee"]["members"][1]["committee_size"] == 3
    assert "committee_size" not in meta["committee"]["members"][0] and "kernel" not in meta["paths"]
    results = []
    for path in (models["members"][1], models["committee"], tmp_path / "nested.pt"):
        atoms = frame.copy()
        atoms.calc = FFKitCalculator(path)
        results.append((atoms.get_potential_energy(), atoms.get_forces()))
    (e1, f1), (e3, f3), (e, f) = results
    assert e == pytest.approx((e1 + e3) / 2, abs=1e-9)
    np.testing.assert_allclose(f, (f1 + f3) / 2, atol=1e-9)
    write_data(tmp_path / "w.data", frame, WATER)
    out = run_lmp(tmp_path, f"""units metal
atom_style atomic
read_data w.data
pair_style ffkit
pair_coeff * * {tmp_path / "nested.pt"} O H
thermo_style custom step pe fnorm
thermo_modify format float %20.15g
run 0
""")
    row = thermo_rows(out)[0]
    assert row["PotEng"] == pytest.approx(e, abs=1e-8) and row["Fnorm"] == pytest.approx(np.linalg.norm(f), abs=1e-8)


@pytest.mark.parametrize("case", ["single-model", "no-method", "bad-size"])
def test_lammps_refusals(tmp_path, frame, models, case):
    model = models["single"]
    if case != "single-model":
        size = 3 if case == "no-method" else 1
        model = write_toy_artifact(tmp_path / "toy.pt", WATER, metadata={"committee": {"size": size}})
    write_data(tmp_path / "w.data", frame, WATER)
    out = run_lmp(tmp_path, f"""units metal
atom_style atomic
read_data w.data
pair_style ffkit
pair_coeff * * {model} O H
fix std all pair 1 ffkit force_std 0
run 0
""", expect_ok=False)
    expected = {"single-model": f"per-atom 'force_std' needs a committee artifact in pair_coeff .* '{model}' "
                                "holds one model",
                "no-method": "declares a committee of 3 models .* but has no forward_committee method",
                "bad-size": r"'committee' must be an object with an integer 'size' >= 2, not \{\"size\":1\}"}[case]
    assert re.search(expected, error_line(out)), error_line(out)


HEADS = {"three_body": {"heads": 3}}


@pytest.fixture(scope="module")
def heads(tmp_path_factory, reference_data):
    """A `fast` model with three heads, its checkpoint, and the committee artifact `ffkit compile` makes of it."""
    d = tmp_path_factory.mktemp("heads")
    torch.manual_seed(3)
    model = build_model("fast", [1, 8], avg_neighbors=20.0, terms=HEADS).double()
    checkpoint = _checkpoint(d / "heads.pt", model, reference_data / "water_deepmd" / "water.extxyz", terms=HEADS)
    assert ffkit_main(["compile", str(checkpoint), "--out", str(d / "committee.pt")]) == 0
    return {"model": model, "committee": d / "committee.pt"}


def test_heads_compile_to_a_committee_of_their_networks(frame, heads):
    """The artifact's members are the heads, each the model's descriptor with its own networks: the committee's
    energy is the model's (the mean of its heads), its spread that of the heads' forces."""
    from ffkit.graphs import frame_graph
    from ffkit.datasets import Frame
    from ffkit.predict import energy_and_forces

    model = heads["model"]
    calc = FFKitCalculator(heads["committee"])
    assert [m["source"] for m in calc.metadata["committee"]["members"]] == [f"heads.pt#head{h}" for h in range(3)]
    atoms = frame.copy()
    atoms.calc = calc
    graph = frame_graph(Frame(numbers=atoms.numbers, positions=atoms.positions, cell=np.asarray(atoms.cell),
                              pbc=atoms.pbc, energy=None, forces=None, source="water frame 7"),
                        model.species, model.cutoff).to(torch.float64)
    energy = energy_and_forces(model, graph)[0].detach()
    head_forces = np.array([energy_and_forces(model.head_member(h), graph)[1].detach().numpy() for h in range(3)])
    assert abs(atoms.get_potential_energy() - float(energy[0])) <= 1e-10 * abs(float(energy[0]))
    np.testing.assert_allclose(atoms.get_forces(), head_forces.mean(0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(calc.results["forces_std"], np.sqrt(head_forces.var(0).mean(1)), rtol=0, atol=1e-10)
    assert calc.results["max_force_std"] > 1e-4  # the heads really differ


@pytest.mark.parametrize("nprocs", [1, 2])
def test_heads_kernel_equals_torchscript(tmp_path, frame, heads, nprocs):
    """The kernel's one descriptor evaluation for all heads = TorchScript's member by member: forces, energy and
    spread over 10 MD steps, float64, <= 1e-10 relative, serial and on 2 ranks. The spread is made on energy
    steps (thermo 10: steps 0 and 10) and where fix pair's trigger asks (every 5 steps, `force_std 1`)."""
    runs = {}
    for path in ("kernel", "torchscript"):
        pair = f"pair_style ffkit path {path}\npair_coeff * * {heads['committee']} O H"
        runs[path] = _lammps(tmp_path / path, frame, heads["committee"], steps=10, pair=pair, thermo=10,
                             fix_pair="5 ffkit force_std 1", nprocs=nprocs if path == "kernel" else 1)
    (kernel_rows, kernel), (script_rows, script) = runs["kernel"], runs["torchscript"]
    assert "the members share their descriptors" in (tmp_path / "kernel" / "log.lammps").read_text()
    assert len(kernel_rows) == len(script_rows) == 2
    for a, b in zip(kernel_rows, script_rows):
        for key in ("c_dev[1]", "c_dev[2]", "PotEng"):
            assert abs(a[key] - b[key]) <= 1e-10 * abs(b[key]), (key, a, b)
    for step in (0, 5, 10):
        assert np.abs(script[step][:, 4]).max() > 1e-4
        np.testing.assert_allclose(kernel[step][:, 1:5], script[step][:, 1:5], rtol=0,
                                   atol=1e-10 * np.abs(script[step][:, 1:4]).max(), err_msg=f"step {step}")
