"""Peers measured here, side by side with ffkit: MACE, Allegro and DeePMD-kit trained on ffkit's splits.

    python benchmarks/peers.py [--peers mace allegro deepmd] [--datasets rmd17_ethanol water_deepmd]
                               [--budget tier|recipe] [--stage setup|train|time|lammps ...]
                               [--out benchmarks/results]

Each peer lives in a virtual environment of its own under benchmarks/.peers/PEER (made here from
the package registry, pinned; never an ffkit dependency: MACE pins e3nn 0.4, NequIP e3nn 0.6 and
DeePMD-kit torch 2.11, so they cannot share one). For each data set the peer trains on exactly the
frames `benchmarks/accuracy.py` gives ffkit (rMD17 ethanol: train.xyz less the 50 validation frames
ffkit holds out, tested on all of test_MD.xyz; water: the seeded 90/10 split, 20 of the 90% held
out for validation), with its own trainer and loss, one core:

- `--budget tier`: the wall time of ffkit's top tier (`accurate` in ffkit.bench.BUDGETS: 28 min on
  ethanol, 25 on water) for the whole training command; the run is stopped there and its best
  checkpoint (by the peer's own validation) is tested.
- `--budget recipe`: the peer's documented small recipe (RECIPES below), stopped at 2 h, the
  training limit of ffkit's top tier, if it has not finished by then.

The test frames are predicted in the peer's environment (peer_worker.py) and scored here by the
same code as `ffkit test`. Speed: one energy + forces call of each trained peer (its ASE
calculator, neighbour list included) on the boxes of `ffkit bench` (5040-atom ethanol, 5184-atom
water), 1 thread, in the same run as ffkit's artifacts of benchmarks/models called the way
`pair_style ffkit` calls them (benchmarks/hot_path.py); `--box-atoms N` times everything on a smaller
box instead, for a peer that runs out of memory on the full one (ffkit's cost per atom is flat within
±6 % from 1536 to 24 000 atoms: lammps_speed.md). `--stage lammps`: a peer whose pip package
brings a LAMMPS pair style (DeePMD-kit: `deepmd-kit[lmp]`) is also timed in NVE MD inside that LAMMPS,
interleaved with ffkit `accurate` in `pair_style ffkit` on the same box. Results are merged into peers.json and
peers.md (a record per peer, data set and budget); work files stay in benchmarks/.peers/.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ffkit.bench import BUDGETS, build_system  # noqa: E402
from ffkit.datasets import dataset_hash, read_frames, split_frames  # noqa: E402
from ffkit.metrics import error_metrics  # noqa: E402
from ffkit.pareto import cost_vs_accurate  # noqa: E402

DATA = ROOT / "data"
HOME = ROOT / "benchmarks" / ".peers"
WORKER = ROOT / "benchmarks" / "peer_worker.py"
RECIPE_MINUTES = 120.0

# pip requirements of each peer's environment, pinned (torch 2.13.0 is the CPU wheel on this machine's disk)
PACKAGES = {
    "mace": ["torch==2.13.0", "mace-torch==0.3.16"],
    "allegro": ["torch==2.13.0", "nequip==0.19.1", "nequip-allegro==0.8.3"],
    # lmp: the LAMMPS wheel with pair_style deepmd, whose library (a CUDA build) aborts without libcudart.so.12
    "deepmd": ["deepmd-kit[torch,lmp]==3.2.0", "ase==3.29.0", "nvidia-cuda-runtime-cu12==12.9.79"],
}

# what each budget trains: MACE's small model (the size measured before on this machine) with the
# rMD17 settings of the MACE paper, and the README's documented recipe
RECIPES = {
    "mace": {
        "tier": {"hidden_irreps": "64x0e + 64x1o", "batch_size": 5, "fit_to_budget": True},
        "recipe": {"hidden_irreps": "128x0e + 128x1o", "batch_size": 10, "max_num_epochs": 1500, "swa": True,
                   "start_swa": 1200},
    },
    "allegro": {
        "tier": {"l_max": 1, "batch_size": 5, "lr": 0.002, "max_epochs": 100000},
        "recipe": {"l_max": 2, "batch_size": 5, "lr": 0.002, "max_epochs": 100000},
    },
    "deepmd": {
        "tier": {"rcut": 6.0},
        "recipe": {"rcut": 6.0, "numb_steps": 1000000},
    },
}


def python(peer: str) -> Path:
    return HOME / peer / "bin" / "python"


def setup(peer: str) -> None:
    """Make the peer's virtual environment and install its pinned packages (once)."""
    venv = HOME / peer
    marker = venv / ".ffkit-installed"
    wanted = " ".join(PACKAGES[peer])
    if marker.is_file() and marker.read_text() == wanted:
        return
    print(f"peers: installing {wanted} into {venv}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python(peer)), "-m", "pip", "install", "-q", *PACKAGES[peer]], check=True)
    marker.write_text(wanted)


# -- data ---------------------------------------------------------------------------------------
def splits(dataset: str):
    """(train, valid, test) frames: the split benchmarks/accuracy.py gives ffkit (seed 0)."""
    if dataset == "rmd17_ethanol":
        train, valid = split_frames(read_frames(DATA / "rmd17_ethanol" / "train.xyz"), 50, seed=0)
        return train, valid, read_frames(DATA / "rmd17_ethanol" / "test_MD.xyz")
    if dataset == "water_deepmd":
        frames, test = split_frames(read_frames(DATA / "water_deepmd" / "water.extxyz"), 0.1, seed=0)
        train, valid = split_frames(frames, 20, seed=0)
        return train, valid, test
    raise SystemExit(f"peers: unknown data set {dataset!r}")


def write_frames(frames, path: Path) -> None:
    """Extended XYZ with REF_energy / REF_forces (keys no ASE calculator writes over)."""
    from ase import Atoms
    from ase.io import write

    images = []
    for f in frames:
        atoms = Atoms(numbers=f.numbers, positions=f.positions, cell=f.cell, pbc=f.pbc)
        atoms.info["REF_energy"] = float(f.energy)
        atoms.arrays["REF_forces"] = np.asarray(f.forces)
        images.append(atoms)
    write(path, images, format="extxyz")


def export(dataset: str) -> Path:
    folder = HOME / "data" / dataset
    if not (folder / "test.xyz").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for name, frames in zip(("train", "valid", "test"), splits(dataset)):
            write_frames(frames, folder / f"{name}.xyz")
    return folder


# -- training -----------------------------------------------------------------------------------
def run_with_budget(cmd, cwd: Path, minutes: float, log: Path, env=None) -> float:
    """Run a training command for at most `minutes` of wall time (then SIGINT, then kill); its seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    start = time.perf_counter()
    with open(log, "a") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            proc.wait(timeout=60.0 * minutes)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return time.perf_counter() - start


class NothingTrained(Exception):
    """The budget ended before the peer saved a model: a result too, recorded as such."""


def trained_seconds(run: Path, train) -> float:
    """Train once: a finished budget run leaves train.done (its seconds), so a rerun goes straight on to testing."""
    done = run / "train.done"
    if not done.is_file():
        done.write_text(f"{train():.1f}\n")
    return float(done.read_text())


def mace_args(data: Path, settings: dict, seed: int = 0) -> list:
    args = ["--name", "peer", "--train_file", str(data / "train.xyz"), "--valid_file", str(data / "valid.xyz"),
            "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--E0s", "average", "--model", "MACE",
            "--hidden_irreps", settings["hidden_irreps"], "--r_max", "5.0", "--num_interactions", "2",
            "--correlation", "3", "--max_L", "1", "--batch_size", str(settings["batch_size"]),
            "--valid_batch_size", "10",
            "--max_num_epochs", str(settings["max_num_epochs"]), "--loss", "weighted", "--energy_weight", "1",
            "--forces_weight", "1000", "--lr", "0.01", "--ema", "--ema_decay", "0.99", "--amsgrad",
            "--default_dtype", "float32", "--device", "cpu", "--seed", str(seed), "--eval_interval", "1",
            "--restart_latest", "--error_table", "PerAtomMAE"]
    if settings.get("swa"):
        args += ["--swa", "--start_swa", str(settings["start_swa"])]
    return args


def mace_epoch_seconds(log: Path):
    """Seconds between MACE's initial evaluation and the end of epoch 0 in its log (one epoch of training
    and one validation), or None when the log does not have both lines."""
    from datetime import datetime

    stamps = {}
    for line in log.read_text().splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) INFO: (Initial|Epoch 0):", line)
        if m:
            stamps[m.group(2)] = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
    if len(stamps) < 2:
        return None
    return (stamps["Epoch 0"] - stamps["Initial"]).total_seconds()


def train_mace(data: Path, run: Path, budget: str, minutes: float) -> dict:
    """mace_run_train within `minutes`. With the tier budget, one epoch is timed first, in a scratch
    folder outside the budget (the epoch from MACE's log, the start-up as the rest of the command),
    and the run then trains from scratch with the number of epochs that fit and MACE's stage two (SWA
    with a raised energy weight) over the last 20%, as its recipe ends.
    (Continuing from the timed epoch instead fails in stage two: a checkpoint saved without SWA has
    no `swa_lr`, ACEsuit/mace#172.) A run stopped by the budget is finished by the same command with
    the epochs it reached: that loads its last checkpoint and writes the model files."""
    settings = dict(RECIPES["mace"][budget])
    cli = str(HOME / "mace" / "bin" / "mace_run_train")
    log = run / "train.log"

    def train() -> float:
        if not settings.pop("fit_to_budget", False):
            return run_with_budget([cli, *mace_args(data, settings)], run, minutes, log)
        timing = run / "epoch_timing"
        timing.mkdir(exist_ok=True)
        first = run_with_budget([cli, *mace_args(data, dict(settings, max_num_epochs=1))], timing, minutes,
                                timing / "train.log")
        epoch = mace_epoch_seconds(timing / "train.log") or first
        startup = first - epoch  # data loading and statistics: paid again by the real run
        epochs = max(2, int((60.0 * minutes - startup) / epoch))
        settings.update(max_num_epochs=epochs, swa=True, start_swa=max(1, int(0.8 * epochs)),
                        timed_epoch_seconds=round(epoch, 1), startup_seconds=round(startup, 1))
        (run / "schedule.json").write_text(json.dumps(settings))
        return run_with_budget([cli, *mace_args(data, settings)], run, minutes, log)

    seconds = trained_seconds(run, train)
    if (run / "schedule.json").is_file():
        settings = json.loads((run / "schedule.json").read_text())
    settings.pop("fit_to_budget", None)
    pattern = re.compile(r"peer_run-0_epoch-(\d+)(_swa)?\.pt$")
    epochs_saved = [int(m.group(1)) for p in (run / "checkpoints").glob("*.pt") if (m := pattern.search(p.name))]
    if not epochs_saved:
        raise NothingTrained(f"MACE finished no epoch in {minutes:g} min ({log})")
    if not (run / "peer.model").is_file():
        finish = dict(settings, max_num_epochs=max(epochs_saved))  # loads that checkpoint, trains no further
        subprocess.run([cli, *mace_args(data, finish)], cwd=run, check=True, stdout=open(run / "finish.log", "w"),
                       stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    model = run / "peer_stagetwo.model" if (run / "peer_stagetwo.model").is_file() else run / "peer.model"
    if not model.is_file():
        raise SystemExit(f"peers: MACE did not write {model} ({run / 'finish.log'})")
    epochs = re.findall(r"Epoch (\d+)", log.read_text())
    return {"model": model, "seconds": seconds, "epochs": 1 + max(int(e) for e in epochs) if epochs else None,
            "best_epoch": max(epochs_saved), "n_params": count_parameters("mace", model), "settings": settings}


def allegro_config(data: Path, settings: dict, minutes: float, species) -> dict:
    """The Allegro tutorial config (allegro configs/tutorial.yaml: l_max 1, 2 layers, 64 scalar and 32
    tensor features) on ffkit's split, with EMA, energy + force loss and a wall-time limit."""
    stats = "${training_data_stats:%s}"
    return {
        "run": ["train"],
        "cutoff_radius": 5.0,
        "chemical_symbols": species,
        "model_type_names": "${chemical_symbols}",
        "data": {
            "_target_": "nequip.data.datamodule.ASEDataModule", "seed": 0,
            "train_file_path": str(data / "train.xyz"), "val_file_path": str(data / "valid.xyz"),
            "ase_args": {"format": "extxyz"},
            "key_mapping": {"REF_energy": "total_energy", "REF_forces": "forces"},
            "transforms": [
                {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": "${cutoff_radius}"},
                {"_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                 "model_type_names": "${model_type_names}",
                 "chemical_species_to_atom_type_map": {s: s for s in species}}],
            "train_dataloader": {"batch_size": settings["batch_size"], "shuffle": True},
            "val_dataloader": {"batch_size": 10},
            "stats_manager": {
                "_target_": "nequip.data.DataStatisticsManager", "type_names": "${model_type_names}",
                "metrics": [
                    {"field": {"_target_": "nequip.data.NumNeighbors"}, "metric": {"_target_": "nequip.data.Mean"},
                     "name": "num_neighbors_mean"},
                    {"field": {"_target_": "nequip.data.PerAtomModifier", "field": "total_energy"},
                     "metric": {"_target_": "nequip.data.Mean"}, "name": "per_atom_energy_mean"},
                    {"field": "forces", "metric": {"_target_": "nequip.data.RootMeanSquare"}, "per_type": True,
                     "name": "per_type_forces_rms"}]},
        },
        "trainer": {
            "_target_": "lightning.Trainer", "max_epochs": settings["max_epochs"],
            "max_time": f"00:{int(minutes // 60):02d}:{int(minutes % 60):02d}:00",
            "check_val_every_n_epoch": 1, "log_every_n_steps": 50, "enable_progress_bar": False,
            "callbacks": [{"_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "dirpath": "${hydra:runtime.output_dir}", "filename": "best",
                           "monitor": "val0_epoch/weighted_sum", "mode": "min", "save_top_k": 1,
                           "save_last": True}],
        },
        "training_module": {
            "_target_": "nequip.train.EMALightningModule", "ema_decay": 0.99,
            "loss": {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True,
                     "coeffs": {"total_energy": 1.0, "forces": 1.0}},
            "val_metrics": {"_target_": "nequip.train.EnergyForceMetrics",
                            "coeffs": {"per_atom_energy_mae": 1.0, "forces_mae": 1.0}},
            "optimizer": {"_target_": "torch.optim.Adam", "lr": settings["lr"]},
            "lr_scheduler": {"scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                                           "factor": 0.5, "patience": 50},
                             "monitor": "val0_epoch/weighted_sum", "interval": "epoch", "frequency": 1},
            "model": {
                "_target_": "allegro.model.AllegroModel", "seed": 0, "model_dtype": "float32",
                "type_names": "${model_type_names}", "r_max": "${cutoff_radius}",
                "radial_chemical_embed": {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8,
                                          "bessel_trainable": False, "polynomial_cutoff_p": 6},
                "radial_chemical_embed_dim": 32, "scalar_embed_mlp_hidden_layers_depth": 2,
                "scalar_embed_mlp_hidden_layers_width": 64,
                "l_max": settings["l_max"], "parity": True,
                "num_layers": 2, "num_scalar_features": 64, "num_tensor_features": 32,
                "allegro_mlp_hidden_layers_depth": 2, "allegro_mlp_hidden_layers_width": 128,
                "readout_mlp_hidden_layers_depth": 1, "readout_mlp_hidden_layers_width": 32,
                "avg_num_neighbors": stats % "num_neighbors_mean",
                "per_type_energy_shifts": stats % "per_atom_energy_mean",
                "per_type_energy_scales": stats % "per_type_forces_rms",
                "per_type_energy_scales_trainable": False, "per_type_energy_shifts_trainable": False,
                "pair_potential": {"_target_": "nequip.nn.pair_potential.ZBL", "units": "metal",
                                   "chemical_species": "${chemical_symbols}"},
            },
        },
        "global_options": {"seed": 0, "allow_tf32": False},
    }


def train_allegro(data: Path, run: Path, budget: str, minutes: float) -> dict:
    """nequip-train with Lightning's max_time; the best checkpoint (validation E + F MAE) is the model."""
    import yaml
    from ase.io import read

    settings = RECIPES["allegro"][budget]
    species = sorted({s for a in read(data / "train.xyz", index=":") for s in a.get_chemical_symbols()})
    (run / "config.yaml").write_text(yaml.safe_dump(allegro_config(data, settings, minutes, species),
                                                    sort_keys=False))
    bin_dir = HOME / "allegro" / "bin"
    cmd = [str(bin_dir / "nequip-train"), "-cp", str(run), "-cn", "config", f"hydra.run.dir={run / 'out'}"]
    # Lightning stops itself at max_time; the outer limit only catches a hang
    seconds = trained_seconds(run, lambda: run_with_budget(cmd, run, minutes + 10, run / "train.log"))
    best = run / "out" / "best.ckpt"
    if not best.is_file():
        raise NothingTrained(f"Allegro finished no epoch in {minutes:g} min ({run / 'train.log'})")
    # nequip-compile refuses TorchScript with torch >= 2.10; the checkpoint runs eagerly through NequIPCalculator
    import torch

    last = torch.load(run / "out" / "last.ckpt", map_location="cpu", weights_only=False)
    return {"model": best, "seconds": seconds, "epochs": int(last["epoch"]),
            "best_epoch": int(torch.load(best, map_location="cpu", weights_only=False)["epoch"]),
            "n_params": count_parameters("allegro", best),
            "settings": settings}


def deepmd_system(xyz: Path, folder: Path) -> Path:
    """Frames of one extended XYZ file as a DeePMD npy system (all frames share one atom order)."""
    from ase.io import read

    images = read(xyz, index=":")
    symbols = sorted(set(images[0].get_chemical_symbols()))
    (folder / "set.000").mkdir(parents=True, exist_ok=True)
    (folder / "type_map.raw").write_text("\n".join(symbols) + "\n")
    types = [symbols.index(s) for s in images[0].get_chemical_symbols()]
    (folder / "type.raw").write_text("\n".join(map(str, types)) + "\n")
    sets = folder / "set.000"
    np.save(sets / "coord.npy", np.array([a.positions.ravel() for a in images]))
    np.save(sets / "energy.npy", np.array([a.info["REF_energy"] for a in images]))
    np.save(sets / "force.npy", np.array([a.arrays["REF_forces"].ravel() for a in images]))
    if images[0].pbc.all():
        np.save(sets / "box.npy", np.array([np.asarray(a.cell).ravel() for a in images]))
    else:
        (folder / "nopbc").write_text("")
    return folder


def deepmd_input(data: Path, settings: dict, steps: int, species) -> dict:
    """DeePMD-kit's documented se_e2_a water example (examples/water/se_e2_a/input.json) on ffkit's split."""
    return {
        "model": {"type_map": species,
                  "descriptor": {"type": "se_e2_a", "sel": "auto", "rcut_smth": 0.5, "rcut": settings["rcut"],
                                 "neuron": [25, 50, 100], "resnet_dt": False, "axis_neuron": 16,
                                 "type_one_side": True, "seed": 1},
                  "fitting_net": {"neuron": [240, 240, 240], "resnet_dt": True, "seed": 1}},
        "learning_rate": {"type": "exp", "decay_steps": max(1, min(5000, steps // 200)), "start_lr": 0.001,
                          "stop_lr": 3.51e-8},
        "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1,
                 "start_pref_v": 0, "limit_pref_v": 0},
        "training": {"training_data": {"systems": [str(data / "deepmd" / "train")], "batch_size": "auto"},
                     "validation_data": {"systems": [str(data / "deepmd" / "valid")], "batch_size": 1,
                                         "numb_btch": 3},
                     "numb_steps": steps, "seed": 10, "disp_file": "lcurve.out", "disp_freq": 100,
                     "save_freq": 1000},
    }


def train_deepmd(data: Path, run: Path, budget: str, minutes: float) -> dict:
    """`dp --pt train` for as many steps as fit in the budget (its learning rate decays over numb_steps,
    so the step count is set from a 200-step calibration run, not counted in the budget); then freeze."""
    from ase.io import read

    settings = RECIPES["deepmd"][budget]
    species = sorted(set(read(data / "train.xyz").get_chemical_symbols()))
    for name in ("train", "valid"):
        if not (data / "deepmd" / name / "type.raw").is_file():
            deepmd_system(data / f"{name}.xyz", data / "deepmd" / name)
    dp = str(HOME / "deepmd" / "bin" / "dp")
    env = {"DP_INTRA_OP_PARALLELISM_THREADS": "1", "DP_INTER_OP_PARALLELISM_THREADS": "1"}
    calibrate = run / "calibrate"
    if not (calibrate / "seconds").is_file():
        calibrate.mkdir(parents=True, exist_ok=True)
        (calibrate / "input.json").write_text(json.dumps(deepmd_input(data, settings, 200, species), indent=1))
        seconds = run_with_budget([dp, "--pt", "train", "input.json"], calibrate, 30, calibrate / "train.log", env)
        (calibrate / "seconds").write_text(f"{seconds}\n")
    timed = re.search(r"average training time: ([0-9.]+) s/batch", (calibrate / "train.log").read_text())
    per_step = float(timed.group(1)) if timed else float((calibrate / "seconds").read_text()) / 200
    steps = settings.get("numb_steps") or int(0.9 * 60.0 * minutes / per_step)
    (run / "input.json").write_text(json.dumps(deepmd_input(data, settings, steps, species), indent=1))
    seconds = trained_seconds(run, lambda: run_with_budget([dp, "--pt", "train", "input.json"], run, minutes,
                                                           run / "train.log", env))
    model = run / "peer.pth"
    if not model.is_file():
        subprocess.run([dp, "--pt", "freeze", "-o", str(model)], cwd=run, check=True,
                       stdout=open(run / "freeze.log", "w"), stderr=subprocess.STDOUT)
    lcurve = np.loadtxt(run / "lcurve.out", ndmin=2)
    return {"model": model, "seconds": seconds, "epochs": None, "steps": int(lcurve[-1, 0]),
            "best_epoch": None, "n_params": count_parameters("deepmd", model),
            "settings": dict(settings, numb_steps=steps)}


def count_parameters(peer: str, model: Path) -> int:
    code = {"mace": f"import torch; m = torch.load({str(model)!r}, map_location='cpu', weights_only=False); "
                    "print(sum(p.numel() for p in m.parameters()))",
            "allegro": "from nequip.utils.global_state import set_global_state; set_global_state(); "
                       "from nequip.model.saved_models.load_utils import load_saved_model; "
                       f"m = load_saved_model({str(model)!r}); print(sum(p.numel() for p in m.parameters()))",
            "deepmd": f"import deepmd.pt, torch; m = torch.jit.load({str(model)!r}, map_location='cpu'); "
                      "print(sum(p.numel() for p in m.parameters()))"}[peer]
    out = subprocess.run([str(python(peer)), "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


TRAINERS = {"mace": train_mace, "allegro": train_allegro, "deepmd": train_deepmd}


def budget_minutes(dataset: str, budget: str) -> float:
    if budget == "recipe":
        return RECIPE_MINUTES
    _, molecule, periodic, _ = BUDGETS["accurate"]
    return periodic if dataset == "water_deepmd" else molecule


def test(peer: str, model: Path, data: Path, test_frames) -> dict:
    out = model.parent / "test_predictions.npz"
    subprocess.run([str(python(peer)), str(WORKER), "predict", peer, str(model), str(data / "test.xyz"), str(out)],
                   check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    pred = np.load(out)
    e_ref = np.array([f.energy for f in test_frames])
    f_ref = np.concatenate([f.forces for f in test_frames])
    return error_metrics(pred["energy"], e_ref, pred["forces"], f_ref)


# -- speed --------------------------------------------------------------------------------------
def timing_box(dataset: str, frames, min_atoms: int = 5000) -> Path:
    """The box `ffkit bench` times for these data (≥ 5000 atoms), or a smaller one, as extended XYZ."""
    from ase.io import write

    path = HOME / "data" / dataset / ("box.xyz" if min_atoms == 5000 else f"box_{min_atoms}.xyz")
    if not path.is_file():
        box, _ = build_system(frames, dataset, min_atoms)
        write(path, box, format="extxyz")
    return path


def time_peer(peer: str, model: Path, box: Path, repeats: int) -> dict:
    out = model.parent / "timing.json"
    subprocess.run([str(python(peer)), str(WORKER), "time", peer, str(model), str(box), str(out),
                    "--repeats", str(repeats)], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.read_text())


def measure_ffkit(dataset: str, box: Path, test_frames, repeats: int) -> list:
    """ffkit's committed artifacts of this data set: timed on the same box, called as pair_style ffkit calls
    them, and scored on the same test frames as the peers (what `ffkit test` computes), so that every row of
    the table, committees and distilled students included, has its accuracy from this run."""
    import torch
    from ase.io import read
    from hot_path import time_artifact

    from ffkit.artifact import read_metadata
    from ffkit.evaluation import evaluate_model

    torch.set_num_threads(1)
    atoms = read(box)
    records = []
    for path in sorted((ROOT / "benchmarks" / "models").glob(f"{dataset}_*.pt")):
        meta = read_metadata(path)
        seconds = time_artifact(path, atoms, meta["cutoff"], repeats, species=meta["species"],
                                layers=meta.get("layers", 1))
        metrics = evaluate_model(path, test_frames)["metrics"]
        records.append({"model": f"ffkit {path.stem.replace(dataset + '_', '')}", "atoms": len(atoms),
                        "us_per_atom": 1e6 * seconds / len(atoms), **metrics})
    return records


# the peers whose pip packages bring a LAMMPS pair style (MACE's ML-IAP interface and Allegro's
# pair_allegro need a LAMMPS compiled with them, which no wheel has): its pair lines, for `lmp` in the
# peer's environment
LAMMPS_PAIRS = {"deepmd": "pair_style deepmd {model}\npair_coeff * * {elements}"}


def stand_in(peer: str, data: Path, run: Path, budget: str, minutes) -> Path:
    """A model of the same settings as a trained run whose model is gone, trained for `minutes` only:
    its cost per atom is the trained model's, since that depends on the architecture, not the weights."""
    if not minutes:
        raise SystemExit(f"peers: the model of {run.name} ({run / 'record.json'}) is no longer on disk; retrain it "
                         "(--stage train) or time a model of the same settings with --stand-in MINUTES")
    folder = run.with_name(run.name + "_stand_in")
    folder.mkdir(parents=True, exist_ok=True)
    return Path(TRAINERS[peer](data, folder, budget, minutes)["model"])


def time_in_lammps(peer: str, model: Path, dataset: str, box: Path, repeats: int) -> dict:
    """NVE MD with the peer's own pair style in its own LAMMPS, interleaved with ffkit `accurate` in
    `pair_style ffkit` on the same box: the peer's µs/atom/step inside an engine, and accurate's beside it."""
    from ase.io import read
    from ffkit_lammps_adapter.md import write_atomic_data
    from ffkit_lammps_adapter.timing import ml_case, pair_case, time_cases

    os.environ.update(DP_INTRA_OP_PARALLELISM_THREADS="1", DP_INTER_OP_PARALLELISM_THREADS="1")  # one core, as ffkit
    atoms = read(box)
    elements = sorted(set(atoms.get_chemical_symbols()))
    work = HOME / "runs" / f"lammps_{peer}_{dataset}"
    work.mkdir(parents=True, exist_ok=True)
    write_atomic_data(atoms, work / "box.data", elements)
    pair = LAMMPS_PAIRS[peer].format(model=Path(model).resolve(), elements=" ".join(elements))
    cases = [pair_case(f"{peer} in LAMMPS", work / "box.data", pair, work / peer, lmp=HOME / peer / "bin" / "lmp"),
             ml_case("ffkit accurate in LAMMPS", work / "box.data", ROOT / "benchmarks" / "models" /
                     f"{dataset}_accurate.pt", elements, work / "accurate")]
    peer_run, accurate_run = time_cases(cases, repeats)
    return {"lammps_us_per_atom_step": peer_run["us_per_atom_step"],
            "lammps_accurate_us_same_run": accurate_run["us_per_atom_step"], "lammps_timed": time.strftime("%Y-%m-%d")}


# -- results ------------------------------------------------------------------------------------
def merge(records, out: Path) -> list:
    path = out / "peers.json"
    old = json.loads(path.read_text()) if path.is_file() else []
    keys = {(r["peer"], r["dataset"], r["budget"]) for r in records}
    merged = [r for r in old if (r["peer"], r["dataset"], r["budget"]) not in keys] + records
    merged.sort(key=lambda r: (r["dataset"], r["peer"], r["budget"]))
    path.write_text(json.dumps(merged, indent=1) + "\n")
    (out / "peers.md").write_text(markdown(merged))
    return merged


def markdown(records) -> str:
    """The table: one row per model and data set, with its cost as a multiple of ffkit `accurate`'s timed on
    that box in the same run (a row timed before runs recorded it keeps the ratio its own run gave)."""
    lines = ["# Peers trained and timed on this machine", "",
             "`python benchmarks/peers.py` (see its docstring): each peer trained with its own trainer on ffkit's "
             "splits, one core; test errors scored by ffkit's metrics; speed is one energy + forces call on the "
             "`ffkit bench` box, 1 thread, beside ffkit's artifacts in the same run. `committed` rows are the "
             "artifacts in benchmarks/models (trained by benchmarks/accuracy.py with the same budgets, or "
             "distilled by benchmarks/distill.py), scored on the same test frames in the same run.", "",
             "| data | model | budget | train time (min) | epochs | params | E MAE (meV) | F MAE (meV/Å) | "
             "F RMSE (meV/Å) | µs/atom (E+F) | × ffkit accurate | box atoms |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        def cell(key, fmt):
            return format(r[key], fmt) if r.get(key) is not None else "–"
        epochs = cell("steps", "d") + " steps" if r.get("steps") and not r.get("epochs") else cell("epochs", "d")
        ratio = cost_vs_accurate(r)
        ratio = "–" if ratio is None else f"{ratio:.2g}"
        force = r.get("note") or cell("f_mae_meV_A", ".2f")
        lines.append(f"| {r['dataset']} | {r['peer']} | {r['budget']} | {cell('train_minutes', '.1f')} | {epochs} | "
                     f"{cell('n_params', 'd')} | {cell('e_mae_meV', '.2f')} | {force} | "
                     f"{cell('f_rmse_meV_A', '.2f')} | {cell('us_per_atom', '.0f')} | {ratio} | "
                     f"{cell('box_atoms', 'd')} |")
    stand_ins = [r for r in records if r.get("timed_stand_in_minutes")]
    if stand_ins:
        lines += ["", "Timed on a stand-in (`--stand-in MINUTES`: the trained model was no longer on disk, so a model "
                  "of the same settings trained for MINUTES was timed; the cost does not depend on the weights):", ""]
        lines += [f"- {r['peer']} on {r['dataset']} ({r['budget']}): stand-in trained {r['timed_stand_in_minutes']:g} "
                  "min" for r in stand_ins]
    in_lammps = [r for r in records if r.get("lammps_us_per_atom_step")]
    if in_lammps:
        lines += ["", "Inside LAMMPS (`--stage lammps`: NVE MD with the peer's own pair style in the LAMMPS of its "
                  "environment, interleaved with ffkit `accurate` in `pair_style ffkit`, same box, 1 core):", ""]
        lines += [f"- {r['peer']} on {r['dataset']}: {r['lammps_us_per_atom_step']:.0f} µs/atom/step = "
                  f"{r['lammps_us_per_atom_step'] / r['lammps_accurate_us_same_run']:.2g}× ffkit accurate's "
                  f"({r['lammps_accurate_us_same_run']:.0f})" for r in in_lammps]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", nargs="+", default=list(PACKAGES), choices=list(PACKAGES))
    ap.add_argument("--datasets", nargs="+", default=["rmd17_ethanol", "water_deepmd"])
    ap.add_argument("--budget", default="tier", choices=["tier", "recipe"])
    ap.add_argument("--stage", nargs="+", default=["setup", "train", "time", "lammps"],
                    choices=["setup", "train", "time", "lammps"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--minutes", type=float, help="override the training budget (quick checks)")
    ap.add_argument("--box-atoms", type=int, default=5000, help="time on a box of at least this many atoms "
                    "(default: ffkit bench's 5000; smaller for a peer that runs out of memory there)")
    ap.add_argument("--stand-in", type=float, metavar="MINUTES",
                    help="time stage, for a trained run whose model is gone: time a model of the same settings "
                         "trained for MINUTES instead (the record notes it)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for peer in args.peers:
        if "setup" in args.stage:
            setup(peer)
    peers_json = out / "peers.json"
    previous = {(r["peer"], r["dataset"], r["budget"]): r
                for r in (json.loads(peers_json.read_text()) if peers_json.is_file() else [])}
    for dataset in args.datasets:
        data = export(dataset)
        train_frames, _, test_frames = splits(dataset)
        box = timing_box(dataset, train_frames, args.box_atoms)
        records = []
        for peer in args.peers:
            run = HOME / "runs" / f"{peer}_{dataset}_{args.budget}"
            record_file = run / "record.json"
            if "train" in args.stage:
                run.mkdir(parents=True, exist_ok=True)
                minutes = args.minutes or budget_minutes(dataset, args.budget)
                try:
                    trained = TRAINERS[peer](data, run, args.budget, minutes)
                except NothingTrained as exc:
                    record = {"peer": peer, "dataset": dataset, "budget": args.budget, "train_minutes": minutes,
                              "note": str(exc).split(" (")[0], "test_sha256": dataset_hash(test_frames),
                              "package": " ".join(PACKAGES[peer]), "date": time.strftime("%Y-%m-%d")}
                    record_file.write_text(json.dumps(record, indent=1))
                    records.append(record)
                    print(f"peers: {exc}", flush=True)
                    continue
                metrics = test(peer, trained["model"], data, test_frames)
                record = {"peer": peer, "dataset": dataset, "budget": args.budget, "model": str(trained["model"]),
                          "train_minutes": trained["seconds"] / 60.0, "epochs": trained["epochs"],
                          "steps": trained.get("steps"),
                          "best_epoch": trained["best_epoch"],
                          "n_params": trained["n_params"], "settings": trained["settings"],
                          "n_train": len(train_frames), "n_test": len(test_frames),
                          "test_sha256": dataset_hash(test_frames), **metrics,
                          "package": " ".join(PACKAGES[peer]), "date": time.strftime("%Y-%m-%d")}
                record_file.write_text(json.dumps(record, indent=1))
                print(markdown([record]), flush=True)
            key = (peer, dataset, args.budget)
            if not record_file.is_file() and key not in previous:
                print(f"peers: no trained {peer} for {dataset} ({args.budget}); run --stage train first")
                continue
            # a run folder that is gone leaves its record in peers.json
            record = json.loads(record_file.read_text()) if record_file.is_file() else dict(previous[key])
            if not {"train", "time"} & set(args.stage):   # keep what earlier stages measured of this model
                record.update(previous.get(key, {}))
            record.setdefault("test_sha256", dataset_hash(test_frames))
            timed = {"time", "lammps"} & set(args.stage) and "note" not in record
            model = Path(record.get("model", ""))
            if timed and not model.is_file():
                model = stand_in(peer, data, run, args.budget, args.stand_in)
                record["timed_stand_in_minutes"] = args.stand_in
            if "time" in args.stage and "note" not in record:
                timing = time_peer(peer, model, box, args.repeats)
                record.update({"us_per_atom": timing["us_per_atom"], "box_atoms": timing["atoms"]})
            if "lammps" in args.stage and peer in LAMMPS_PAIRS and "note" not in record:
                record.update(time_in_lammps(peer, model, dataset, box, args.repeats))
            records.append(record)
        if "time" in args.stage:
            ffkit = measure_ffkit(dataset, box, test_frames, args.repeats)
            # a cost is only compared with ffkit accurate's timed in the same run, on the same load
            accurate = next((r["us_per_atom"] for r in ffkit if r["model"] == "ffkit accurate"), None)
            for record in records:
                if record.get("us_per_atom") and "note" not in record:
                    record.update({"accurate_us_same_run": accurate, "timed": time.strftime("%Y-%m-%d")})
            for r in ffkit:
                records.append({"peer": r["model"], "dataset": dataset, "budget": "committed",
                                **{k: r[k] for k in ("e_mae_meV", "f_mae_meV_A", "f_rmse_meV_A")},
                                "us_per_atom": r["us_per_atom"], "box_atoms": r["atoms"],
                                "accurate_us_same_run": accurate, "test_sha256": dataset_hash(test_frames)})
        print(markdown(merge(records, out)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
