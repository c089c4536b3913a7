"""`ffkit train`: fit a force field to energies and forces, with checkpoints that survive a kill.

Reproducible: the frame order of epoch e is a permutation seeded by (seed, e), so a resumed run
and an uninterrupted one see the same batches. Distributed: under `torchrun` each process takes
an equal share of every global batch and PyTorch's DistributedDataParallel (gloo on CPU)
averages gradients, giving the model a single process would train with the same global batch.
"""

import copy
import csv
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from . import __version__
from .checkpoints import CHECKPOINT_FORMAT, load_state, model_from_spec, read_checkpoint, save_atomic
from .config import TrainConfig, absolute_path
from .datasets import Frame, dataset_hash, read_frames, split_frames
from .errors import FFKitError
from .graphs import Graph, collate, frame_graph
from .metrics import error_metrics
from .model.tiers import resolve_terms
from .precision import torch_dtype
from .predict import energy_and_forces
from .recipes import batch_size, force_loss, learning_rate, training_steps, weight_decay
from .reference import fit_reference_energies, isolated_atom_energies


class _EnergyForces(nn.Module):
    """Wraps the model so DistributedDataParallel sees one forward that yields E and F: per head,
    stacked (heads, frames) and (heads, atoms, 3), so each head of a multi-head model fits the data
    on its own (a committee's members, not one averaged model)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, graph: Graph):
        heads = self.model.heads()
        if heads == 1:
            energy, forces = energy_and_forces(self.model, graph, training=True)
            return energy.unsqueeze(0), forces.unsqueeze(0)
        results = []
        for head in range(heads):
            self.model.set_head(head)
            results.append(energy_and_forces(self.model, graph, training=True))
        self.model.set_head(-1)
        return torch.stack([e for e, _ in results]), torch.stack([f for _, f in results])


def _read(cfg: TrainConfig, path: str) -> List[Frame]:
    return read_frames(path, energy_key=cfg.energy_key, forces_key=cfg.forces_key,
                       energy_unit=cfg.energy_unit, length_unit=cfg.length_unit)


def _species(frames: List[Frame]) -> List[int]:
    return sorted({int(z) for f in frames for z in f.numbers})


def frame_losses(energy, forces, graph: Graph, cfg: TrainConfig) -> torch.Tensor:
    """Loss of each frame: w_E (dE/N)^2 + w_F mean(penalty(dF)) — per frame, so shards add up exactly.

    The force penalty is (dF)^2 or Huber(dF) (`cfg.force_loss`, default the tier's)."""
    n = graph.atoms_per_frame().to(energy.dtype)
    e_term = ((energy - graph.energy) / n) ** 2
    if (cfg.force_loss or force_loss(cfg.tier)) == "huber":
        penalty = F.huber_loss(forces, graph.forces, reduction="none", delta=cfg.huber_delta)
    else:
        penalty = (forces - graph.forces) ** 2
    f_term = torch.zeros_like(e_term).index_add(0, graph.batch, penalty.sum(-1)) / (3.0 * n)
    return cfg.energy_weight * e_term + cfg.force_weight * f_term


def evaluate(model: nn.Module, graphs: List[Graph], dtype: torch.dtype, batch_size: int = 32) -> Dict[str, Any]:
    """Predictions and metrics on a list of single-frame graphs (eV in, meV out)."""
    e_pred, e_ref, f_pred, f_ref = [], [], [], []
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start:start + batch_size]).to(dtype)
        energy, forces = energy_and_forces(model, batch)
        e_pred.append(energy.detach().double().numpy())
        f_pred.append(forces.detach().double().numpy())
        e_ref.append(batch.energy.double().numpy())
        f_ref.append(batch.forces.double().numpy())
    e_pred, e_ref = np.concatenate(e_pred), np.concatenate(e_ref)
    f_pred, f_ref = np.concatenate(f_pred), np.concatenate(f_ref)
    return {"metrics": error_metrics(e_pred, e_ref, f_pred, f_ref),
            "e_pred": e_pred, "e_ref": e_ref, "f_pred": f_pred, "f_ref": f_ref}


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg = copy.copy(cfg)  # resolved defaults (epochs, weight decay) stay out of the caller's config
        cfg = self.cfg
        self.out = Path(cfg.out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        self.dtype = torch_dtype(cfg.dtype)
        self.elapsed = 0.0  # training seconds so far (restored on resume); the LR schedule reads it
        self._load_data()
        self.out.mkdir(parents=True, exist_ok=True)  # after the data are read: bad input leaves no folder
        for name in ("best.pt", "last.pt"):  # a kill during a save leaves its temporary file: never valid
            for stale in self.out.glob(f"{name}*.tmp"):
                stale.unlink()
        last = self.out / "last.pt"
        if resume:
            if not last.is_file():
                raise FFKitError(f"{last}: nothing to resume (no last checkpoint in {self.out}); "
                                 "start without --resume")
            self._restore(read_checkpoint(last))
        else:
            if last.is_file():
                raise FFKitError(f"{self.out} already holds a run (last.pt); pass --resume to continue it "
                                 "or choose a new --out")
            self._initialise()

    # -- set-up ---------------------------------------------------------------------------
    def _load_data(self) -> None:
        cfg = self.cfg
        frames = _read(cfg, cfg.data)
        if cfg.max_frames:
            frames = frames[: cfg.max_frames]
        if cfg.valid:
            train, valid = frames, _read(cfg, cfg.valid)
        else:
            train, valid = split_frames(frames, cfg.n_valid, cfg.seed)
        if len(train) == 0:
            raise FFKitError(f"{cfg.data}: no training frames left after holding out validation frames")
        self.train_frames, self.valid_frames = train, valid
        self.species = _species(train + valid)
        self.data_hash = dataset_hash(train)
        if cfg.batch_size is None:
            cfg.batch_size = batch_size(cfg.tier)
        if cfg.epochs is None:  # the tier's optimiser steps, whatever the size of the data
            cfg.epochs = max(1, math.ceil(training_steps(cfg.tier) / math.ceil(len(train) / cfg.batch_size)))
        self.valid_hash = dataset_hash(valid) if valid else None

    def _graphs(self, cutoff: float) -> None:
        self.train_graphs = [frame_graph(f, self.species, cutoff) for f in self.train_frames]
        self.valid_graphs = [frame_graph(f, self.species, cutoff) for f in self.valid_frames]
        self.min_distances = closest_approach(self.train_graphs, self.species)

    def _reference_energies(self) -> List[float]:
        cfg = self.cfg
        if cfg.reference == "fit":
            refs = fit_reference_energies(self.train_frames, self.species)
        else:
            refs = isolated_atom_energies(cfg.reference)
            missing = [z for z in self.species if z not in refs]
            if missing:
                raise FFKitError(f"{cfg.reference}: no isolated-atom energy for atomic number(s) {missing}; "
                                 "add them or use `reference: fit`")
        return [float(refs[z]) for z in self.species]

    def _initialise(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        terms = resolve_terms(cfg.tier, cfg.terms)
        probe = model_from_spec({"species": self.species, "reference_energies": [0.0] * len(self.species),
                                 "terms": terms, "avg_neighbors": 1.0})
        self._graphs(probe.cutoff)
        ml_cutoffs = [t.cutoff for t in probe.terms if t.learned_readout() is not None]
        avg_neighbors = self._mean_neighbours(min(ml_cutoffs)) if ml_cutoffs else 1.0
        torch.manual_seed(cfg.seed)
        self.spec = {"tier": cfg.tier, "terms": terms, "species": self.species,
                     "reference_energies": self._reference_energies(), "avg_neighbors": avg_neighbors}
        self.model = model_from_spec(self.spec).to(self.dtype)
        self._set_statistics()
        self.ema = copy.deepcopy(self.model) if cfg.ema_decay > 0 else None
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.epoch = 0
        self.history: List[Dict[str, float]] = []
        self.best = math.inf

    def _mean_neighbours(self, cutoff: float) -> float:
        counts = [int((torch.linalg.vector_norm(g.positions[g.edge_index[1]] - g.positions[g.edge_index[0]]
                                                + g.shifts, dim=-1) < cutoff).sum()) / g.n_atoms
                  for g in self.train_graphs[:100]]
        return max(float(np.mean(counts)), 1.0)

    @torch.no_grad()
    def _set_statistics(self) -> None:
        """Data-dependent init: standardise each ML term's features, scale outputs by the RMS force."""
        sample = collate(self.train_graphs[:64]).to(self.dtype)
        force_rms = float(torch.sqrt((sample.forces ** 2).mean()))
        vectors = sample.positions[sample.edge_index[1]] - sample.positions[sample.edge_index[0]] + sample.shifts
        lengths = torch.linalg.vector_norm(vectors, dim=-1)
        for term in self.model.terms:
            keep = lengths < term.cutoff
            term.set_statistics(sample.species, sample.edge_index[:, keep], vectors[keep], lengths[keep],
                                sample.n_atoms, force_rms)
        self._refit_reference_energies(self.model, self.train_graphs[:64])

    def _refit_reference_energies(self, model: nn.Module, graphs: List[Graph]) -> None:
        """Absorb the model's mean energy error per element into its reference energies (least
        squares over `graphs`; forces do not change).

        At the start the terms carry a nonzero energy per atom; left to the optimiser, that offset
        costs many epochs (worst in condensed phases, where it multiplies by hundreds of atoms). At
        the end, Adam has moved the reference energies by steps of ~lr eV that a force-dominated loss
        barely sees (rMD17 ethanol, accurate: -7.4 meV on every training frame before this refit).
        """
        with torch.enable_grad():  # forces need autograd, also when called from no_grad set-up
            result = evaluate(model, graphs, self.dtype, batch_size=64)
        counts = torch.stack([torch.bincount(g.species, minlength=len(self.species)) for g in graphs]).double()
        residual = torch.from_numpy(result["e_ref"] - result["e_pred"]).unsqueeze(-1)
        shift = torch.linalg.lstsq(counts, residual, driver="gelsd").solution.squeeze(-1)
        with torch.no_grad():
            model.reference_energies.add_(shift.to(model.reference_energies.dtype))

    def _refit_final_reference_energies(self) -> None:
        """Refit the reference energies of the trained weights (and EMA) in last.pt and best.pt
        (once, when the last epoch was also the best: the two files then hold the same weights)."""
        refitted = None
        for path in (self.out / "last.pt", self.out / "best.pt"):
            if not path.is_file():
                continue
            ckpt = read_checkpoint(path)
            if refitted is not None and ckpt["epoch"] == refitted["epoch"]:
                save_atomic(refitted, path)
                continue
            for key in ("model_state", "ema_state"):
                if ckpt.get(key) is None:
                    continue
                model = model_from_spec(ckpt["model_spec"]).to(self.dtype)
                load_state(model, ckpt[key], path)
                self._refit_reference_energies(model, self.train_graphs)
                ckpt[key] = model.state_dict()
            save_atomic(ckpt, path)
            refitted = ckpt

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """AMSGrad Adam; with weight decay (`cfg.weight_decay`, default the tier's), AdamW's decoupled
        decay on the atomic networks' weight matrices only (biases, radial mixes, physics terms and
        reference energies are left free)."""
        # foreach: one fused update over all parameters (the per-tensor loop costs ~8% of an epoch)
        lr = self.cfg.lr if self.cfg.lr is not None else learning_rate(self.cfg.tier)
        decay = self.cfg.weight_decay if self.cfg.weight_decay is not None else weight_decay(self.cfg.tier)
        params = list(self.model.parameters())
        if not decay:
            return torch.optim.Adam(params, lr=lr, amsgrad=True, foreach=True)
        readouts = [r for r in (term.learned_readout() for term in self.model.terms) if r is not None]
        decayed = {id(m.weight) for r in readouts for m in r.modules() if isinstance(m, nn.Linear)}
        groups = [{"params": [p for p in params if id(p) in decayed], "weight_decay": decay},
                  {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, amsgrad=True, foreach=True)

    def _make_scheduler(self):
        cfg = self.cfg
        floor = cfg.lr_min_factor

        def factor(epoch: int) -> float:
            # with a wall-time budget the decay follows whichever budget runs out first, so a run
            # stopped by `max_minutes` still ends annealed (at the price of bitwise reproducibility)
            progress = epoch / max(cfg.epochs, 1)
            if cfg.max_minutes:
                progress = max(progress, self.elapsed / (60.0 * cfg.max_minutes))
            progress = min(progress, 1.0)
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def _restore(self, ckpt: Dict[str, Any]) -> None:
        # runs saved before configs made their data paths absolute hold them as typed. Runs that record
        # their frames' hash are checked by it, not by path, so a run or its data may move.
        saved = {**ckpt["config"], "data": absolute_path(ckpt["config"].get("data"))}
        keys = ("tier", "terms", "seed", "batch_size", "dtype") + (() if "data_hash" in ckpt else ("data",))
        for key in keys:
            if saved.get(key) != getattr(self.cfg, key):
                raise FFKitError(f"--resume with a different {key} ({getattr(self.cfg, key)!r}) than the run in "
                                 f"{self.out} ({saved.get(key)!r}); resume with the same settings or start a new run")
        hashes = (("training", "data_hash", self.data_hash), ("validation", "valid_hash", self.valid_hash))
        for name, key, now in hashes:
            if key in ckpt and ckpt[key] != now:
                raise FFKitError(f"--resume: the {name} frames differ from those the run in {self.out} was trained "
                                 f"with (different data, --valid, --n-valid, max_frames or split seed); resume with "
                                 f"the same data and split, or start a new run")
        self.spec = ckpt["model_spec"]
        self.model = model_from_spec(self.spec).to(self.dtype)
        self._graphs(self.model.cutoff)
        load_state(self.model, ckpt["model_state"], self.out / "last.pt")
        self.ema = None
        if ckpt.get("ema_state") is not None:
            self.ema = copy.deepcopy(self.model)
            load_state(self.ema, ckpt["ema_state"], self.out / "last.pt")
        self.elapsed = ckpt.get("elapsed", 0.0)
        if self.cfg.weight_decay is None:  # keep the run's optimizer: runs saved before the option had none
            self.cfg.weight_decay = saved.get("weight_decay", 0.0)
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()  # before loading: creating it resets the learning rate
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        self.scheduler.load_state_dict(ckpt["scheduler_state"])
        self.epoch = ckpt["epoch"]
        self.history = ckpt["history"]
        self.best = ckpt["best"]
        torch.set_rng_state(ckpt["rng"]["torch"])

    # -- loop -----------------------------------------------------------------------------
    def _checkpoint(self) -> Dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "ffkit_version": __version__, "config": self.cfg.to_dict(),
            "model_spec": self.spec, "model_state": self.model.state_dict(),
            "ema_state": None if self.ema is None else self.ema.state_dict(),
            "optimizer_state": self.optimizer.state_dict(), "scheduler_state": self.scheduler.state_dict(),
            "epoch": self.epoch, "history": self.history, "best": self.best, "elapsed": self.elapsed,
            "rng": {"torch": torch.get_rng_state()}, "data_hash": self.data_hash, "valid_hash": self.valid_hash,
            "min_distances": self.min_distances,
            "n_params": self.model.count_parameters(),
        }

    def _batches(self) -> List[List[int]]:
        """The epoch's global batches. Under torchrun a last batch with fewer frames than processes
        would leave a process with nothing to compute, so it joins the batch before it."""
        order = np.random.default_rng([self.cfg.seed, self.epoch]).permutation(len(self.train_graphs))
        size = self.cfg.batch_size
        batches = [order[i:i + size].tolist() for i in range(0, len(order), size)]
        if len(batches) > 1 and len(batches[-1]) < self.world:
            batches[-2] += batches.pop()
        return batches

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        decay = min(self.cfg.ema_decay, (1.0 + self.epoch) / (10.0 + self.epoch))
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1.0 - decay)

    def _plan(self) -> str:
        """What the run will do and, from a few timed training steps, about how long it will take."""
        cfg = self.cfg
        steps_per_epoch = len(self._batches())
        graph = collate(self.train_graphs[:cfg.batch_size]).to(self.dtype)
        seconds = []
        for _ in range(4):  # the first call pays for allocations: the median of the others
            start = time.perf_counter()
            energies, forces = _EnergyForces(self.model)(graph)
            sum(frame_losses(e, f, graph, cfg) for e, f in zip(energies, forces)).sum().backward()
            seconds.append(time.perf_counter() - start)
        self.optimizer.zero_grad(set_to_none=True)
        remaining = (cfg.epochs - self.epoch) * steps_per_epoch * sorted(seconds[1:])[1] / self.world
        if cfg.max_minutes:
            remaining = min(remaining, 60.0 * cfg.max_minutes - self.elapsed)
        return (f"ffkit train: {cfg.tier or 'custom'} model, {len(self.train_graphs)} training frames, "
                f"{cfg.epochs} epochs of {steps_per_epoch} steps ({cfg.epochs * steps_per_epoch} optimiser steps)"
                f"{f', at most {cfg.max_minutes:g} min' if cfg.max_minutes else ''}; expected about "
                f"{remaining / 60.0:.0f} min on this machine")

    def _train_epoch(self, wrapped: nn.Module) -> float:
        self.model.train()
        total = 0.0
        for batch_ids in self._batches():
            mine = batch_ids[self.rank::self.world]
            graph = collate([self.train_graphs[i] for i in mine]).to(self.dtype)
            energies, forces = wrapped(graph)
            losses = sum(frame_losses(e, f, graph, self.cfg) for e, f in zip(energies, forces))
            loss = losses.sum() * (self.world / len(batch_ids))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self._update_ema()
            total += float(losses.detach().sum())
        return total / len(self.train_graphs)

    def run(self) -> Dict[str, Any]:
        from tqdm import tqdm

        cfg = self.cfg
        wrapped: nn.Module = _EnergyForces(self.model)
        if self.world > 1:
            wrapped = nn.parallel.DistributedDataParallel(wrapped, find_unused_parameters=True)
        show = cfg.progress and self.rank == 0
        if show and self.epoch < cfg.epochs:
            print(self._plan(), flush=True)
        bar = tqdm(total=cfg.epochs, initial=self.epoch, desc=f"train {cfg.tier or 'custom'}", unit="epoch",
                   disable=not show, dynamic_ncols=True)
        started = time.perf_counter() - self.elapsed
        first_epoch, first_elapsed = self.epoch, self.elapsed
        stopped_early = False
        while self.epoch < cfg.epochs:
            train_loss = self._train_epoch(wrapped)
            self.elapsed = time.perf_counter() - started
            self.scheduler.step()
            self.epoch += 1
            record = {"epoch": self.epoch, "loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"],
                      "seconds": self.elapsed}
            if self.valid_graphs:
                record.update({f"valid_{k}": v for k, v in
                               evaluate(self.ema or self.model, self.valid_graphs, self.dtype)["metrics"].items()})
            self.history.append(record)
            score = record.get("valid_f_mae_meV_A", train_loss)
            improved = score < self.best
            if improved:
                self.best = score
            if self.rank == 0:
                ckpt = self._checkpoint()
                if improved:
                    save_atomic(ckpt, self.out / "best.pt")
                save_atomic(ckpt, self.out / "last.pt")
            bar.set_postfix(loss=f"{train_loss:.3g}", val_E=f"{record.get('valid_e_mae_meV', float('nan')):.1f}meV",
                            val_F=f"{record.get('valid_f_mae_meV_A', float('nan')):.1f}meV/A")
            if cfg.max_minutes is not None:  # the bar's end (and so its ETA) is where the time budget stops the run
                bar.total = budget_epochs(cfg.epochs, cfg.max_minutes, self.epoch, self.elapsed,
                                          (self.elapsed - first_elapsed) / (self.epoch - first_epoch))
            bar.update(1)
            if cfg.max_minutes is not None and self.elapsed > 60.0 * cfg.max_minutes:
                stopped_early = True
                break
        bar.close()
        if self.rank == 0:
            self._refit_final_reference_energies()
            self._write_history()
        return {"epochs": self.epoch, "steps": self.epoch * len(self._batches()),
                "best_valid_f_mae_meV_A": self.best, "seconds": self.elapsed,
                "stopped_early": stopped_early, "n_params": self.model.count_parameters(),
                "run_dir": str(self.out)}

    def _write_history(self) -> None:
        if not self.history:
            return
        keys = list(self.history[-1].keys())
        with open(self.out / "history.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.history)
        from .plots import loss_curves
        loss_curves(self.history, self.out / "training.png")


def budget_epochs(epochs: int, max_minutes: float, epoch: int, elapsed: float, seconds_per_epoch: float) -> int:
    """The epoch a run stops at: `epochs`, or the first to end past `max_minutes` at the pace measured so far."""
    left = 60.0 * max_minutes - elapsed
    if left < 0.0:
        return epoch
    return min(epochs, epoch + int(left // max(seconds_per_epoch, 1e-9)) + 1)


def closest_approach(graphs: List[Graph], species: List[int]) -> Dict[str, float]:
    """The shortest distance (Å) between each pair of elements in the training frames, keyed "H-O" (model
    order): below it the model extrapolates, and engines can say so (`pair_style ffkit ... close`)."""
    from ase.data import chemical_symbols

    best: Dict[str, float] = {}
    for g in graphs:
        vectors = g.positions[g.edge_index[1]] - g.positions[g.edge_index[0]] + g.shifts
        lengths = torch.linalg.vector_norm(vectors, dim=-1)
        a, b = g.species[g.edge_index[0]], g.species[g.edge_index[1]]
        for first, second in torch.unique(torch.stack([torch.minimum(a, b), torch.maximum(a, b)], 1), dim=0).tolist():
            mask = (torch.minimum(a, b) == first) & (torch.maximum(a, b) == second)
            key = f"{chemical_symbols[species[first]]}-{chemical_symbols[species[second]]}"
            best[key] = min(best.get(key, float("inf")), float(lengths[mask].min()))
    return {k: round(v, 4) for k, v in sorted(best.items())}


def train(cfg: TrainConfig, resume: bool = False) -> Dict[str, Any]:
    """Train as `cfg` says with `cfg.threads` torch threads; the caller's thread setting is restored after."""
    previous = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return Trainer(cfg, resume=resume).run()
    finally:
        torch.set_num_threads(previous)
