"""Plots a person would rather look at than read: parity plots and training curves (PNG)."""

from pathlib import Path
from typing import Dict, List

import numpy as np


def figure(nrows: int = 1, ncols: int = 1, figsize=(6.0, 4.0), **subplots):
    """A figure and its axes drawn without pyplot: no backend is chosen and no global state changes,
    so a library call never switches the user's matplotlib backend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplots)


def parity(result: Dict, path: Path, title: str) -> None:
    m = result["metrics"]
    fig, axes = figure(1, 2, figsize=(9, 4.2))
    e_ref, e_pred = result["e_ref"], result["e_pred"]
    shift = e_ref.mean()
    axes[0].scatter(e_ref - shift, e_pred - shift, s=6, alpha=0.6)
    axes[0].set_xlabel("reference energy − mean (eV)")
    axes[0].set_ylabel("predicted energy − mean (eV)")
    axes[0].set_title(f"E  MAE {m['e_mae_meV']:.2f} meV, RMSE {m['e_rmse_meV']:.2f} meV")
    f_ref, f_pred = result["f_ref"].ravel(), result["f_pred"].ravel()
    axes[1].scatter(f_ref, f_pred, s=2, alpha=0.3)
    axes[1].set_xlabel("reference force component (eV/Å)")
    axes[1].set_ylabel("predicted (eV/Å)")
    axes[1].set_title(f"F  MAE {m['f_mae_meV_A']:.1f} meV/Å, RMSE {m['f_rmse_meV_A']:.1f}")
    for ax, lo, hi in ((axes[0], (e_ref - shift).min(), (e_ref - shift).max()), (axes[1], f_ref.min(), f_ref.max())):
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def loss_curves(history: List[Dict[str, float]], path: Path) -> None:
    epochs = np.array([h["epoch"] for h in history])
    fig, ax = figure(1, 2, figsize=(9, 3.6))
    ax[0].semilogy(epochs, [h["loss"] for h in history])
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("training loss")
    if "valid_f_mae_meV_A" in history[-1]:
        ax[1].semilogy(epochs, [h["valid_f_mae_meV_A"] for h in history], label="F MAE (meV/Å)")
        ax[1].semilogy(epochs, [h["valid_e_mae_meV"] for h in history], label="E MAE (meV)")
        ax[1].legend()
        ax[1].set_xlabel("epoch")
        ax[1].set_title("validation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
