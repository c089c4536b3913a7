"""`ffkit deploy gromacs`: build GROMACS with NNPot against the installed torch, once, and cache it.

Follows GROMACS's install guide with the options of docs/design.md §5 (CPU, thread-MPI, Libtorch).
The result lives in `~/.cache/ffkit/gromacs-<version>-torch-<torch version>/` (or `--prefix`),
marked complete by a stamp file only after `make install` succeeded, so a second call returns at
once and an interrupted build is resumed (same build directory; ccache makes it quick).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import List, Optional

from ffkit.errors import FFKitError

from .engine import STAMP, cache_root

DEFAULT_VERSION = "2026.3"
MIN_CMAKE = (3, 28)


def torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def torch_cmake_prefix() -> str:
    import torch

    return torch.utils.cmake_prefix_path


def install_prefix(gromacs_version: str, prefix: Optional[str] = None) -> Path:
    return Path(prefix) if prefix else cache_root() / f"gromacs-{gromacs_version}-torch-{torch_version()}"


def version_from_source(source: str) -> Optional[str]:
    match = re.search(r"gromacs-(\d{4}(?:\.\d+)*(?:-\w+)?)(?:\.tar\.gz|\.tgz|/?$)", str(source))
    return match.group(1) if match else None


def configure_options(source_dir: Path, prefix: Path) -> List[str]:
    """The cmake command line: docs/design.md §5, with the SIMD level this CPU supports."""
    options = [
        str(source_dir), "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_INSTALL_PREFIX={prefix}",
        f"-DCMAKE_PREFIX_PATH={torch_cmake_prefix()}", "-DGMX_NNPOT=TORCH", "-DGMX_GPU=OFF", "-DGMX_MPI=OFF",
        "-DGMX_FFT_LIBRARY=fftw3", "-DBUILD_TESTING=OFF", "-DGMX_BUILD_HELP=OFF", "-DGMX_INSTALL_NBLIB_API=OFF",
        "-DGMXAPI=OFF", "-DGMX_USE_COLVARS=NONE", "-DGMX_USE_PLUMED=OFF", "-DGMX_PYTHON_PACKAGE=OFF",
        f"-DGMX_ENABLE_CCACHE={'ON' if shutil.which('ccache') else 'OFF'}",
    ]
    if "avx2" in _cpu_flags():
        options.append("-DGMX_SIMD=AVX2_256")
    return options


def _cpu_flags() -> set:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(match.group(1).split()) if match else set()


def check_prerequisites() -> None:
    """Everything the build needs, each missing piece named with the command that provides it."""
    problems = []
    cmake = shutil.which("cmake")
    if not cmake:
        problems.append("cmake not found: `pip install 'cmake>=3.28'`")
    else:
        out = subprocess.run([cmake, "--version"], capture_output=True, text=True).stdout
        found = tuple(int(x) for x in re.search(r"(\d+)\.(\d+)", out).groups())
        if found < MIN_CMAKE:
            problems.append(f"cmake {found[0]}.{found[1]} is too old (GROMACS needs >= 3.28): "
                            "`pip install 'cmake>=3.28'` in this environment")
    if not (shutil.which("c++") or shutil.which("g++")):
        problems.append("no C++ compiler: `apt-get install g++`")
    if not any(Path(d).glob("libfftw3f.*") for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib",
                                                     "/usr/local/lib")):
        problems.append("single-precision FFTW not found: `apt-get install libfftw3-dev`")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        problems.append("Python headers not found (the NNPot CMake needs them): `apt-get install python3-dev`")
    if problems:
        raise FFKitError("cannot build GROMACS here:\n  - " + "\n  - ".join(problems))


def fetch_source(source: str, version: str, say) -> Path:
    """The release tarball as a local file: a path as given, or a URL downloaded into the cache."""
    if re.match(r"https?://", source):
        target = cache_root() / "src" / f"gromacs-{version}.tar.gz"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            say(f"downloading {source}")
            partial = target.with_suffix(".part")
            try:
                urllib.request.urlretrieve(source, partial)
            except OSError as exc:
                raise FFKitError(f"could not download {source} ({exc}); download the release tarball "
                                 "elsewhere and pass its path with --source") from None
            partial.rename(target)
        return target
    path = Path(source).expanduser()
    if not path.exists():
        raise FFKitError(f"--source {source}: no such file; give a GROMACS release tarball "
                         "(gromacs-<version>.tar.gz) or its URL")
    return path


def unpack(tarball: Path, version: str, say) -> Path:
    """Unpack once into the cache; returns the source directory (the one holding CMakeLists.txt)."""
    if tarball.is_dir():
        source_dir = tarball
    else:
        source_dir = cache_root() / "src" / f"gromacs-{version}"
        if not (source_dir / "CMakeLists.txt").is_file():
            say(f"unpacking {tarball}")
            try:
                with tarfile.open(tarball) as tar:
                    top = {m.name.split("/")[0] for m in tar.getmembers()}
                    if len(top) != 1:
                        raise FFKitError(f"{tarball}: expected one top-level folder, found {sorted(top)[:5]}")
                    if hasattr(tarfile, "data_filter"):   # refuses absolute paths and links out of the tree
                        tar.extractall(source_dir.parent, filter="data")
                    else:
                        tar.extractall(source_dir.parent)
            except tarfile.TarError as exc:
                raise FFKitError(f"{tarball}: not a readable tarball ({exc})") from None
            unpacked = source_dir.parent / top.pop()
            if unpacked != source_dir:
                unpacked.rename(source_dir)
    cmakelists = source_dir / "CMakeLists.txt"
    if not cmakelists.is_file() or "project(Gromacs" not in cmakelists.read_text(errors="replace"):
        raise FFKitError(f"{source_dir}: not a GROMACS source tree (no GROMACS CMakeLists.txt)")
    return source_dir


def _run_logged(command: List[str], cwd: Path, log: Path, say, progress_label: Optional[str] = None) -> None:
    """Run a build step, everything to `log`; make's '[ 42%]' lines drive a progress bar."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=progress_label, unit="%", disable=progress_label is None, file=sys.stderr)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "a", buffering=1) as out:             # line-buffered: `tail -f` follows the build
        out.write(f"\n$ {' '.join(command)}\n")
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env)
        for line in proc.stdout:
            out.write(line)
            match = re.match(r"\[\s*(\d+)%\]", line)
            if match and int(match.group(1)) > bar.n:
                bar.update(int(match.group(1)) - bar.n)
        code = proc.wait()
    bar.close()
    if code != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-25:])
        raise FFKitError(f"`{' '.join(command[:2])} ...` failed (exit {code}); full log: {log}\n{tail}")


def deploy_gromacs(source: str, version: Optional[str] = None, prefix: Optional[str] = None,
                   jobs: Optional[int] = None, say=print) -> Path:
    """Build and install GROMACS with NNPot (or return the cached build); returns bin/gmx."""
    version = version or version_from_source(source)
    if not version:
        raise FFKitError(f"cannot tell the GROMACS version from {source!r}; pass --version (e.g. {DEFAULT_VERSION})")
    target = install_prefix(version, prefix)
    gmx = target / "bin" / "gmx"
    if (target / STAMP).is_file() and gmx.is_file():
        say(f"GROMACS {version} with NNPot (torch {torch_version()}) already built: {gmx}")
        return gmx
    tarball = fetch_source(source, version, say)  # a bad --source is reported before the toolchain
    check_prerequisites()
    source_dir = unpack(tarball, version, say)
    build_dir = cache_root() / "build" / f"{target.name}"
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "ffkit-build.log"
    jobs = jobs or os.cpu_count() or 1
    started = time.time()
    say(f"configuring GROMACS {version} against torch {torch_version()} in {build_dir} (log: {log})")
    _run_logged(["cmake", *configure_options(source_dir, target)], build_dir, log, say)
    say(f"building with {jobs} jobs (about an hour on 2 cores; interrupting and re-running resumes)")
    _run_logged(["make", f"-j{jobs}"], build_dir, log, say, progress_label="gromacs")
    _run_logged(["make", "install"], build_dir, log, say)
    stamp = {"gromacs_version": version, "torch_version": torch_version(), "torch_cmake_prefix": torch_cmake_prefix(),
             "source": str(source), "configure": configure_options(source_dir, target),
             "build_minutes": round((time.time() - started) / 60, 1)}
    (target / STAMP).write_text(json.dumps(stamp, indent=1))
    say(f"installed {gmx} in {stamp['build_minutes']} min; `ffkit doctor` checks it has NNPot")
    return gmx


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("deploy", help="build an engine with ffkit support (GROMACS with NNPot)")
    p.add_argument("engine", choices=["gromacs"])
    p.add_argument("--source", required=True, help="GROMACS release tarball (path or URL) or unpacked source folder")
    p.add_argument("--version", help=f"GROMACS version (default: read from the tarball name, e.g. {DEFAULT_VERSION})")
    p.add_argument("--prefix", help="install here instead of ~/.cache/ffkit/gromacs-<version>-torch-<torch>/")
    p.add_argument("--jobs", type=int, help="parallel make jobs (default: all cores)")
    p.set_defaults(func=run)


def run(args) -> int:
    gmx = deploy_gromacs(args.source, args.version, args.prefix, args.jobs)
    print(f"export FFKIT_GMX={gmx}")
    return 0
