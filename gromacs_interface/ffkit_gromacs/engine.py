"""Finding and running a GROMACS that has NNPot: `FFKIT_GMX`, the deploy cache, or PATH.

`gmx --version` does not say whether NNPot was compiled in; a grompp with `nnpot-active = yes`
does (without it grompp says the Libtorch backend is not linked), so that is what we ask.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

from ffkit.errors import FFKitError

STAMP = "ffkit-deploy.json"


def cache_root() -> Path:
    return Path(os.environ.get("FFKIT_CACHE", Path.home() / ".cache" / "ffkit"))


def cached_builds() -> List[Path]:
    """Installed deploy builds (newest GROMACS first), each a prefix holding bin/gmx and the stamp."""
    root = cache_root()
    found = [p for p in root.glob("gromacs-*-torch-*") if (p / STAMP).is_file() and (p / "bin" / "gmx").is_file()]
    return sorted(found, key=lambda p: json.loads((p / STAMP).read_text()).get("gromacs_version", ""), reverse=True)


def find_gmx() -> Optional[Path]:
    """`FFKIT_GMX` if set (it must exist), else the newest deploy build, else `gmx` on PATH."""
    env = os.environ.get("FFKIT_GMX")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FFKitError(f"FFKIT_GMX={env}: not an executable file; point it at a gmx binary built with NNPot")
        return path
    builds = cached_builds()
    if builds:
        return builds[0] / "bin" / "gmx"
    on_path = shutil.which("gmx")
    return Path(on_path) if on_path else None


def gmx_version(gmx) -> Tuple[str, int]:
    """("2026.3", 2026) from `gmx --version`."""
    out = run_gmx(gmx, ["--version"], check=True).stdout
    match = re.search(r"GROMACS version:\s+(\S+)", out)
    if not match:
        raise FFKitError(f"{gmx}: `gmx --version` printed no 'GROMACS version:' line")
    version = match.group(1)
    return version, int(re.match(r"(\d+)", version).group(1))


_PROBE_TOP = """[ defaults ]
1 2 no 1.0 1.0
[ atomtypes ]
H_nn 1 1.008 0.0 A 0.0 0.0
[ moleculetype ]
X 1
[ atoms ]
1 H_nn 1 X H 1 0.0 1.008
[ system ]
probe
[ molecules ]
X 1
"""


def has_nnpot(gmx) -> Tuple[bool, str]:
    """Whether this gmx has NNPot, from a grompp on a one-atom system with a missing model file."""
    with tempfile.TemporaryDirectory(prefix="ffkit-probe-") as tmp:
        tmp = Path(tmp)
        (tmp / "probe.top").write_text(_PROBE_TOP)
        (tmp / "probe.gro").write_text("probe\n1\n    1X        H    1   1.000   1.000   1.000\n   5.0 5.0 5.0\n")
        (tmp / "probe.mdp").write_text("integrator = md\nnsteps = 0\ncutoff-scheme = Verlet\n"
                                       "verlet-buffer-tolerance = -1\nrlist = 1.0\nnnpot-active = yes\n"
                                       "nnpot-modelfile = absent-model.pt\n"
                                       "nnpot-input-group = System\nnnpot-model-input1 = atom-positions\n")
        out = run_gmx(gmx, ["grompp", "-f", "probe.mdp", "-c", "probe.gro", "-p", "probe.top", "-o", "probe.tpr"],
                      cwd=tmp, check=False)
    text = out.stdout + out.stderr
    if "Model file does not exist" in text:
        return True, "NNPot (Libtorch) compiled in"
    if "not linked into GROMACS" in text:
        return False, "built without NNPot (reconfigure with -DGMX_NNPOT=TORCH, e.g. `ffkit deploy gromacs`)"
    if "nnpot" in text.lower() and ("unknown" in text.lower() or "not recognized" in text.lower()):
        return False, "this GROMACS predates NNPot (2025 or newer needed)"
    return False, "could not tell: " + " ".join(text.split()[-40:])


def run_gmx(gmx, args, cwd=None, check: bool = True, env=None, stdin: Optional[str] = None,
            timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    """Run `gmx ARGS`; with `check`, a failure raises an error carrying GROMACS's own message."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([str(gmx), *map(str, args)], cwd=cwd, env=full_env, input=stdin, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise FFKitError(f"`gmx {' '.join(map(str, args))}` failed (exit {proc.returncode}) in {cwd or '.'}:\n"
                         + gromacs_error(proc.stdout + proc.stderr))
    return proc


def gromacs_error(text: str) -> str:
    """GROMACS's WARNING/ERROR paragraphs and its fatal-error block, each on one line (GROMACS
    wraps lines at 80 columns and puts blank lines inside model tracebacks), or the last lines of
    its output when it printed none of those."""
    stop = r"(?=^(?:WARNING|ERROR) \d+ \[|^-{20,}|^Fatal error:|\Z)"
    found = [m.group(1) for m in re.finditer(r"^((?:WARNING|ERROR) \d+ \[.*?)" + stop, text, re.S | re.M)]
    fatal = re.search(r"^Program:.*?\n\s*\n(.*?)(?:^-{20,}|\Z)", text, re.S | re.M)
    if fatal:
        found.append(fatal.group(1))
    tail = re.search(r"^(Fatal error:.*?)(?:^-{20,}|\Z)", text, re.S | re.M)
    if tail:
        found.append(tail.group(1))
    if not found:
        return "\n".join(text.strip().splitlines()[-15:])
    return "\n".join(" ".join(paragraph.split()) for paragraph in found)