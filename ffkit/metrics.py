"""Error metrics in the units the literature reports: meV per structure, meV/Å per force component."""

from typing import Dict

import numpy as np


def error_metrics(e_pred, e_ref, f_pred, f_ref) -> Dict[str, float]:
    de = 1000.0 * (np.asarray(e_pred, dtype=np.float64) - np.asarray(e_ref, dtype=np.float64))
    df = 1000.0 * (np.asarray(f_pred, dtype=np.float64) - np.asarray(f_ref, dtype=np.float64)).ravel()
    return {
        "e_mae_meV": float(np.mean(np.abs(de))),
        "e_rmse_meV": float(np.sqrt(np.mean(de ** 2))),
        "f_mae_meV_A": float(np.mean(np.abs(df))),
        "f_rmse_meV_A": float(np.sqrt(np.mean(df ** 2))),
    }
