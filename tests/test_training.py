"""Training, checkpoints, resume after SIGKILL, distributed training, compile round trip, ffkit test."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ffkit import bundled
from ffkit.artifact import read_metadata
from ffkit.checkpoints import load_checkpoint, read_checkpoint
from ffkit.config import TrainConfig
from ffkit.datasets import read_frames
from ffkit.evaluation import evaluate_model
from ffkit.recipes import LEARNING_RATES
from ffkit.training import train

ETHANOL = str(bundled.path("ethanol_train.xyz"))


def _ffkit(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ffkit", *map(str, args)], capture_output=True, text=True,
                          env=env, **kw)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data=ETHANOL, out=str(out), tier="fast", n_valid=10, epochs=3, batch_size=8,
                      dtype="float64", progress=False, threads=1, max_frames=60)
    summary = train(cfg)
    return out, summary


def test_training_writes_checkpoints_history_and_plot(small_run):
    out, summary = small_run
    for name in ("best.pt", "last.pt", "history.csv", "training.png"):
        assert (out / name).is_file(), name
    ckpt = read_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 3 and len(ckpt["history"]) == 3
    assert summary["n_params"] == ckpt["n_params"] > 0
    assert np.isfinite(ckpt["history"][-1]["valid_f_mae_meV_A"])


def test_training_reduces_force_error(small_run):
    out, _ = small_run
    history = read_checkpoint(out / "last.pt")["history"]
    assert history[-1]["loss"] < history[0]["loss"]


def test_final_reference_energies_leave_no_mean_energy_error(small_run):
    from ffkit.datasets import split_frames

    out, _ = small_run
    train_frames, _ = split_frames(read_frames(ETHANOL)[:60], 10, 0)
    for path in (out / "best.pt", out / "last.pt"):
        r = evaluate_model(path, train_frames)
        assert abs(np.mean(r["e_pred"] - r["e_ref"])) < 1e-6, path  # one composition: the mean is fitted away
        assert r["metrics"]["e_mae_meV"] > 1e-3  # ... but not the scatter


def test_learning_rate_is_the_tiers_unless_given(small_run, tmp_path):
    out, _ = small_run
    initial_lr = read_checkpoint(out / "last.pt")["optimizer_state"]["param_groups"][0]["initial_lr"]
    assert initial_lr == LEARNING_RATES["fast"]
    cfg = TrainConfig(data=ETHANOL, out=str(tmp_path / "run"), tier="accurate", lr=3e-4, n_valid=5, epochs=1,
                      progress=False, threads=1, max_frames=20)
    train(cfg)
    assert read_checkpoint(tmp_path / "run" / "last.pt")["optimizer_state"]["param_groups"][0]["initial_lr"] == 3e-4


def test_batch_size_and_steps_are_the_tiers_unless_given(tmp_path):
    """equivariant trains 4 frames a step (recipes.BATCH_SIZES), the others 8; epochs follow the tier's steps."""
    from ffkit.recipes import TRAINING_STEPS
    from ffkit.training import Trainer

    for tier, given, expected in (("equivariant", None, 4), ("fast", None, 8), ("equivariant", 2, 2)):
        cfg = TrainConfig(data=ETHANOL, out=str(tmp_path / f"{tier}{given}"), tier=tier, batch_size=given, n_valid=5,
                          progress=False, max_frames=45)
        trainer = Trainer(cfg)
        assert trainer.cfg.batch_size == expected and cfg.batch_size == given  # the caller's config is untouched
        assert len(trainer._batches()) == -(-40 // expected)
        assert trainer.cfg.epochs == -(-TRAINING_STEPS[tier] // len(trainer._batches()))


def test_force_penalty_is_the_tiers_huber_or_mse(tmp_path):
    from ffkit.config import load_config
    from ffkit.graphs import collate, frame_graph
    from ffkit.training import frame_losses

    frame = read_frames(ETHANOL)[0]
    graph = collate([frame_graph(frame, [1, 6, 8], 5.0)]).to(torch.float64)
    error = torch.zeros_like(graph.forces)
    error[0] = torch.tensor([0.002, -0.05, 0.0], dtype=torch.float64)  # one component each side of delta
    energy = graph.energy.clone()
    forces = graph.forces + error
    n = 3.0 * graph.n_atoms
    mse = float(frame_losses(energy, forces, graph, TrainConfig(tier="mm")))
    assert mse == pytest.approx(10.0 * (0.002 ** 2 + 0.05 ** 2) / n, rel=1e-12)
    huber = float(frame_losses(energy, forces, graph, TrainConfig(tier="accurate")))
    assert huber == pytest.approx(10.0 * (0.5 * 0.002 ** 2 + 0.01 * (0.05 - 0.005)) / n, rel=1e-12)
    assert float(frame_losses(energy, forces, graph, TrainConfig(tier="accurate", force_loss="mse"))) == mse
    with pytest.raises(Exception, match="force_loss must be mse or huber, not 'l1'"):
        load_config(None, {"data": ETHANOL, "out": str(tmp_path), "force_loss": "l1"})


def test_weight_decay_shrinks_only_the_atomic_networks_weights(tmp_path):
    """With zero gradients an AdamW step only decays: readout weight matrices by (1 - lr wd), nothing else."""
    from torch import nn

    from ffkit.training import Trainer

    trainer = Trainer(TrainConfig(data=ETHANOL, out=str(tmp_path), tier="fast", max_frames=12, n_valid=2,
                                  weight_decay=0.5, lr=0.1, progress=False))
    readout = {id(m.weight) for m in trainer.model.terms[2].readout.modules() if isinstance(m, nn.Linear)}
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    for p in trainer.model.parameters():
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()
    for name, p in trainer.model.named_parameters():
        factor = 1.0 - 0.1 * 0.5 if id(p) in readout else 1.0
        assert torch.allclose(p.detach(), before[name] * factor, rtol=1e-6, atol=0), name
    assert len(readout) == 6 and trainer.model.term_names[2] == "three_body"  # 3 elements x 2 layers


def test_compiled_artifact_matches_checkpoint(small_run, tmp_path):
    out, _ = small_run
    frames = read_frames(bundled.path("ethanol_test.xyz"))[:20]
    r = _ffkit("compile", out / "best.pt", "--out", tmp_path / "model.pt", "--dtype", "float64")
    assert r.returncode == 0, r.stderr
    meta = read_metadata(tmp_path / "model.pt")
    for key in ("format_version", "ffkit_version", "species", "cutoff", "units", "dtype", "terms", "n_params",
                "training_data_sha256", "test_metrics", "tier"):
        assert key in meta, key
    assert meta["species"] == [1, 6, 8] and meta["units"]["energy"] == "eV" and meta["dtype"] == "float64"
    # the closest approach per element pair in the training frames: bonds, not overlaps
    assert set(meta["min_distances"]) == {"H-H", "H-C", "H-O", "C-C", "C-O"}  # model order; one O per molecule
    assert 0.8 < meta["min_distances"]["H-O"] < 1.1 and 1.3 < meta["min_distances"]["C-C"] < 1.7
    info = _ffkit("info", tmp_path / "model.pt")
    assert json.loads(info.stdout)["cutoff"] == meta["cutoff"]
    ck = evaluate_model(out / "best.pt", frames)
    art = evaluate_model(tmp_path / "model.pt", frames)
    np.testing.assert_allclose(art["e_pred"], ck["e_pred"], rtol=1e-6)
    scale = np.abs(ck["f_pred"]).max()
    np.testing.assert_allclose(art["f_pred"], ck["f_pred"], rtol=1e-6, atol=1e-6 * scale)
    # a float32 artifact of the same model agrees to float32 precision
    r = _ffkit("compile", out / "best.pt", "--out", tmp_path / "model32.pt", "--dtype", "float32")
    assert r.returncode == 0, r.stderr
    art32 = evaluate_model(tmp_path / "model32.pt", frames)
    np.testing.assert_allclose(art32["f_pred"], ck["f_pred"], atol=1e-4 * scale)
    # an artifact recast to float32 by `ffkit compile ARTIFACT` equals the float32 compile of the checkpoint
    r = _ffkit("compile", tmp_path / "model.pt", "--out", tmp_path / "recast32.pt", "--dtype", "float32")
    assert r.returncode == 0, r.stderr
    assert read_metadata(tmp_path / "recast32.pt")["dtype"] == "float32"
    recast = evaluate_model(tmp_path / "recast32.pt", frames)
    np.testing.assert_allclose(recast["f_pred"], art32["f_pred"], atol=1e-5 * scale)
    # ... and wrapped for GROMACS NNPot without the checkpoint
    r = _ffkit("compile", tmp_path / "model.pt", "--out", tmp_path / "nnpot.pt", "--engine", "gromacs")
    assert r.returncode == 0, r.stderr
    assert read_metadata(tmp_path / "nnpot.pt")["engine"] == "gromacs"


def test_ffkit_test_cli_reports_metrics_and_plot(small_run, tmp_path):
    out, _ = small_run
    test_file = bundled.path("ethanol_test.xyz")
    r = _ffkit("test", out / "best.pt", "--data", test_file, "--json", tmp_path / "m.json", "--plot",
               tmp_path / "p.png")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics) >= {"e_mae_meV", "f_mae_meV_A", "e_rmse_meV", "f_rmse_meV_A"}
    assert metrics["f_rmse_meV_A"] >= metrics["f_mae_meV_A"] > 0
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert "meV/Å" in r.stdout


def test_evaluation_batches_hold_a_bounded_number_of_atoms():
    from ffkit.evaluation import _batches

    ethanol = read_frames(ETHANOL)[:40]
    water = read_frames(bundled.path("water_frames.xyz"))
    frames = ethanol + water + ethanol[:3]
    batches = _batches(frames)
    assert [f for b in batches for f in b] == frames  # every frame once, in order
    assert all(len(b) <= 32 and (len(b) == 1 or sum(len(f.numbers) for f in b) <= 1024) for b in batches)
    assert len(batches[0]) == 32 and len(_batches(water)[0]) == 1024 // len(water[0].numbers)


def _train_args(out, epochs, extra=()):
    return ["train", "--data", ETHANOL, "--tier", "fast", "--out", out, "--epochs", epochs, "--n-valid", 10,
            "--batch-size", 8, "--dtype", "float64", "--threads", 1, "--no-progress", "--config", _cfg(out), *extra]


def _cfg(out):
    path = f"{out}.yaml"
    with open(path, "w") as fh:
        fh.write("max_frames: 40\n")
    return path


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_model(tmp_path):
    EPOCHS = 12  # long enough that the kill at epoch >= 2 lands mid-run on a fast machine
    straight = tmp_path / "straight"
    r = _ffkit(*_train_args(straight, EPOCHS))
    assert r.returncode == 0, r.stderr
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ffkit", *map(str, _train_args(killed, EPOCHS))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / "last.pt").is_file() and read_checkpoint(killed / "last.pt")["epoch"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = read_checkpoint(killed / "last.pt")["epoch"]
    assert 2 <= saved < EPOCHS, "the kill must land mid-run"
    (killed / "best.ptab12cd.tmp").write_bytes(b"")  # what a kill -9 during a save leaves behind
    r = _ffkit(*_train_args(killed, EPOCHS, ["--resume"]))
    assert r.returncode == 0, r.stderr
    assert not list(killed.glob("*.tmp")), "the resumed run cleans up interrupted saves"
    a, b = read_checkpoint(straight / "last.pt"), read_checkpoint(killed / "last.pt")
    assert b["epoch"] == EPOCHS and [h["epoch"] for h in b["history"]] == list(range(1, EPOCHS + 1))
    for key, value in a["model_state"].items():
        assert torch.equal(value, b["model_state"][key]), key


@pytest.mark.slow
def test_two_process_ddp_equals_one_process(tmp_path):
    single = tmp_path / "single"
    r = _ffkit(*_train_args(single, 2))
    assert r.returncode == 0, r.stderr
    ddp = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                "-m", "ffkit", *map(str, _train_args(ddp, 2))]
    r = subprocess.run(torchrun, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = read_checkpoint(single / "last.pt"), read_checkpoint(ddp / "last.pt")
    for key, value in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][key], value, rtol=1e-9, atol=1e-11, msg=key)


@pytest.mark.slow
def test_ddp_survives_a_last_batch_smaller_than_the_process_count(tmp_path):
    # 57 training frames in batches of 8 leave one frame for the last batch: one of two ranks had none
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534",
                "-m", "ffkit", "train", "--data", ETHANOL, "--tier", "fast", "--out", str(out), "--epochs", "1",
                "--batch-size", "8", "--n-valid", "3", "--dtype", "float64", "--no-progress", "--config",
                str(_max_frames_config(tmp_path, 60))]
    r = subprocess.run(torchrun, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert read_checkpoint(out / "last.pt")["epoch"] == 1


def _max_frames_config(tmp_path, n):
    path = tmp_path / "frames.yaml"
    path.write_text(f"max_frames: {n}\n")
    return path


def test_resume_refuses_a_different_split(tmp_path):
    out = tmp_path / "run"
    r = _ffkit(*_train_args(out, 1))
    assert r.returncode == 0, r.stderr
    args = _train_args(out, 2, ["--resume"])
    r = _ffkit(*[12 if a == 10 else a for a in args])  # --n-valid 12 instead of 10
    assert r.returncode == 2 and "training frames differ" in r.stderr and "--resume" in r.stderr
    valid = tmp_path / "valid.xyz"
    valid.write_text("".join(open(ETHANOL).readlines()[:11]))  # the first frame (9 atoms + 2 lines)
    r = _ffkit(*args, "--valid", valid)
    assert r.returncode == 2 and "frames differ" in r.stderr
    assert read_checkpoint(out / "last.pt")["epoch"] == 1


def test_a_run_keeps_its_data_path_absolute_so_it_resumes_from_anywhere(tmp_path):
    # a config written with a path relative to where training started (a YAML file or Python)
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "train.xyz").write_text(open(ETHANOL).read())
    r = _ffkit(*[a if a != ETHANOL else "train.xyz" for a in _train_args(tmp_path / "run", 1)], cwd=here)
    assert r.returncode == 0, r.stderr
    assert read_checkpoint(tmp_path / "run" / "last.pt")["config"]["data"] == str(here / "train.xyz")
    r = _ffkit(*[a if a != ETHANOL else here / "train.xyz" for a in _train_args(tmp_path / "run", 2, ["--resume"])],
               cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert TrainConfig(data="d.xyz", valid=None).data == os.path.abspath("d.xyz")


def test_a_moved_run_resumes_with_its_moved_data(tmp_path):
    # the frames' hash identifies the data, not its path: a run folder and its data may move together
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    (old / "train.xyz").write_text(open(ETHANOL).read())
    r = _ffkit(*[a if a != ETHANOL else old / "train.xyz" for a in _train_args(old / "run", 1)])
    assert r.returncode == 0, r.stderr
    old.rename(new)
    r = _ffkit(*[a if a != ETHANOL else new / "train.xyz" for a in _train_args(new / "run", 2, ["--resume"])])
    assert r.returncode == 0, r.stderr
    assert read_checkpoint(new / "run" / "last.pt")["epoch"] == 2


def test_cli_errors_are_clear(tmp_path):
    r = _ffkit("train", "--data", ETHANOL, "--tier", "huge", "--out", tmp_path / "x")
    assert r.returncode == 2 and "unknown tier 'huge'" in r.stderr and "accurate" in r.stderr
    r = _ffkit("train", "--data", tmp_path / "missing.xyz", "--tier", "fast", "--out", tmp_path / "y")
    assert r.returncode == 2 and "missing.xyz" in r.stderr
    r = _ffkit("train", "--data", ETHANOL, "--tier", "fast", "--out", tmp_path / "z", "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    r = _ffkit("info", bad)
    assert r.returncode == 2 and "bad.pt" in r.stderr and "not a TorchScript artifact" in r.stderr
    r = _ffkit("compile", bad, "--out", tmp_path / "m.pt")
    assert r.returncode == 2 and "not a readable ffkit checkpoint" in r.stderr
    plain = tmp_path / "plain.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(plain))
    r = _ffkit("info", plain)
    assert r.returncode == 2 and "not an ffkit artifact" in r.stderr


def test_yaml_config_builds_a_custom_mix(tmp_path):
    import yaml
    from ffkit.config import load_config
    from ffkit.model.tiers import resolve_terms

    example = yaml.safe_load(open(bundled.path("ethanol_train.xyz").parents[2] / "examples" / "configs" /
                                  "ethanol_custom.yaml"))
    terms = resolve_terms(example["tier"], example["terms"])
    assert set(terms) == {"repulsion", "three_body", "dispersion"}
    assert terms["three_body"]["n_channels"] == 12 and terms["three_body"]["hidden"] == [64, 64]
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump({**example, "data": ETHANOL, "out": str(tmp_path / "run"), "epochs": 1,
                                        "max_frames": 20, "n_valid": 5, "progress": False}))
    summary = train(load_config(str(cfg_file), {}))
    model, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    assert model.term_names == ["repulsion", "three_body", "dispersion"] and summary["epochs"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x.xyz\nout: y\nepochz: 3\n")
    with pytest.raises(Exception, match="unknown option.*epochz"):
        load_config(str(bad), {})


@pytest.mark.parametrize("text, error", [("lr: fast", r"`lr: fast` is not a number; write e.g. `lr: 1.0e-3`"),
                                         ("epochs: 1.5e0", r"`epochs: 1.5e0` must be a whole number")])
def test_yaml_numbers_without_a_dot_are_numbers(tmp_path, text, error):
    """YAML reads `1e-3` as text: the config makes it the number a user meant, or names the option."""
    from ffkit.config import load_config

    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("data: x.xyz\nout: y\nlr: 1e-3\nweight_decay: 5e-2\nepochs: 1e3\nn_valid: 5e1\n")
    cfg = load_config(str(cfg_file), {})
    assert (cfg.lr, cfg.weight_decay, cfg.epochs, cfg.n_valid) == (1e-3, 5e-2, 1000, 50)
    assert isinstance(cfg.epochs, int) and isinstance(cfg.n_valid, int)
    cfg_file.write_text(f"data: x.xyz\nout: y\n{text}\n")
    with pytest.raises(Exception, match=f"cfg.yaml: {error}"):
        load_config(str(cfg_file), {})


def test_committee_members_train_in_parallel_as_they_would_alone(tmp_path):
    """`train_parallel` (benchmarks/accuracy.py --committee): each member is the model its config trains alone."""
    from ffkit.bench import train_parallel

    cfgs = [TrainConfig(data=ETHANOL, out=str(tmp_path / f"seed{seed}"), tier="fast", seed=seed, n_valid=5, epochs=2,
                        dtype="float64", progress=False, threads=1, max_frames=25) for seed in (0, 1)]
    summaries = train_parallel(cfgs)
    assert [s["run_dir"] for s in summaries] == [c.out for c in cfgs]
    alone = TrainConfig(**{**cfgs[1].to_dict(), "out": str(tmp_path / "alone")})
    train(alone)
    states = [read_checkpoint(tmp_path / run / "last.pt")["model_state"] for run in ("seed0", "seed1", "alone")]
    for key in states[1]:
        assert torch.equal(states[1][key], states[2][key]), key
    assert not all(torch.equal(states[0][key], states[1][key]) for key in states[0])  # seeds differ


def test_heads_each_fit_the_data_and_the_model_is_their_mean(tmp_path):
    """`heads: 2` on the 3-body term: two networks on one descriptor, a committee whose members share it. The
    loss is the sum of each head's own loss (each head fits the data, not only their mean); the checkpoint
    gives a model whose energy is the mean of its heads, and each head as an ordinary one-head model."""
    from ffkit.graphs import collate
    from ffkit.predict import energy_and_forces
    from ffkit.training import Trainer, _EnergyForces, frame_losses

    cfg = TrainConfig(data=ETHANOL, out=str(tmp_path / "run"), tier="fast", terms={"three_body": {"heads": 2}},
                      max_frames=20, n_valid=4, epochs=2, progress=False, dtype="float64", threads=1)
    trainer = Trainer(cfg)
    model = trainer.model
    graph = collate(trainer.train_graphs[:4]).to(torch.float64)
    energies, forces = _EnergyForces(model)(graph)
    assert energies.shape == (2, 4) and forces.shape == (2, graph.n_atoms, 3)
    for head in range(2):
        e, f = energy_and_forces(model.head_member(head), graph)
        assert torch.allclose(energies[head], e, rtol=0, atol=1e-10) and torch.allclose(forces[head], f, atol=1e-10)
    assert not torch.allclose(energies[0], energies[1])  # independently initialised networks
    mean = energy_and_forces(model, graph)[0]
    assert torch.allclose(mean, energies.mean(0), rtol=0, atol=1e-10)
    summed = sum(frame_losses(e, f, graph, cfg) for e, f in zip(energies, forces))
    assert float(summed.sum()) > float(frame_losses(mean, forces.mean(0), graph, cfg).sum())
    trainer.run()
    trained, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    assert trained.heads() == 2 and trained.head_member(1).heads() == 1


def test_a_time_budget_sets_where_the_progress_bar_ends():
    """With --max-minutes the bar ends (and its ETA points) where the budget stops the run, not at --epochs:
    a run stops after the first epoch that ends past the budget."""
    from ffkit.training import budget_epochs

    assert budget_epochs(5000, 10.0, 100, 300.0, 3.0) == 201  # 300 s left at 3 s an epoch: 100 more, then one past
    assert budget_epochs(150, 10.0, 100, 300.0, 3.0) == 150  # the epochs run out first
    assert budget_epochs(5000, 10.0, 100, 601.0, 3.0) == 100  # past the budget: this epoch was the last
