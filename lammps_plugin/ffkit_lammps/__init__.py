"""Where the LAMMPS `pair_style ffkit` plugin lives, for the `lammps.plugins` entry point.

The venv's `lmp` launcher calls `plugin_dir()` at every start and puts the directory on
LAMMPS_PLUGIN_PATH, so LAMMPS auto-loads `ffkitplugin.so`. Keep this module import-light:
no torch, nothing from ffkit (the launcher runs it once per MPI rank).
"""

import os
import sys

PLUGIN_FILE = "ffkitplugin.so"


def plugin_dir() -> str:
    """Directory holding ffkitplugin.so (built into this package by setup.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isfile(os.path.join(here, PLUGIN_FILE)):
        sys.stderr.write(f"ffkit_lammps: {PLUGIN_FILE} is missing from {here}, so LAMMPS has no "
                         "'pair_style ffkit'; rebuild it with: pip install --no-build-isolation -e <ffkit checkout>\n")
    return here
