"""The mdp lines and index group that make GROMACS call an ffkit NNPot artifact correctly.

GROMACS passes `nnpot-model-input1..N` to the model positionally, in mdp order, so the block is
generated from the artifact's own metadata (`mdp_inputs`) rather than written by hand. The tpr
stores the model path only and mdrun resolves it from its working directory: the path is
written absolute unless asked otherwise.
"""

from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from ffkit.errors import FFKitError

from .checks import check_artifact, check_embedding, check_model_inputs, check_pressure_coupling, mdp_key, \
    nnpot_active

PAIR_LIST_BUFFER_NM = 0.1  # how far atoms may approach between pair-list updates (nstlist 10)


def nnpot_settings(model_path, input_group: str = "NN", *, absolute: bool = True,
                   gromacs_version: Optional[int] = None) -> Dict[str, str]:
    """The `nnpot-*` mdp settings for an artifact, in the order GROMACS reads them.

    For the 2026 pair layout GROMACS's pair list is reused between updates, so the pair cut-off
    is the model cut-off plus a buffer, and the list range (rlist) and update interval are fixed
    (verlet-buffer-tolerance = -1) so that mdrun cannot lengthen the interval behind our back.
    """
    path = Path(model_path)
    meta = check_artifact(path, gromacs_version)
    settings = {
        "nnpot-active": "yes",
        "nnpot-modelfile": str(path.resolve() if absolute else path),
        "nnpot-input-group": input_group,
    }
    if meta["layout"] == "pairs":
        pair_cutoff = round(meta["cutoff"] + PAIR_LIST_BUFFER_NM, 4)  # nm, as the artifact's units say
        settings.update({"nnpot-pair-cutoff": f"{pair_cutoff:g}", "verlet-buffer-tolerance": "-1",
                         "rlist": f"{pair_cutoff:g}", "nstlist": "10"})
    for k, name in enumerate(meta["mdp_inputs"], start=1):
        settings[f"nnpot-model-input{k}"] = name
    return settings


def render_mdp(settings: Mapping[str, Any]) -> str:
    width = max(len(k) for k in settings)
    return "".join(f"{k:<{width}} = {v}\n" for k, v in settings.items())


def write_mdp(path, settings: Mapping[str, Any], allow_wrong_pressure: bool = False) -> Path:
    """Write an mdp file after the checks: NNPot inputs match the artifact, mechanical embedding,
    no pressure coupling."""
    path = Path(path)
    normalised = {mdp_key(k): v for k, v in settings.items()}
    if nnpot_active(normalised):
        meta = check_artifact(normalised["nnpot-modelfile"])
        check_model_inputs(normalised, meta, str(path))
        check_embedding(normalised, str(path))
        if meta["layout"] == "pairs":
            _check_pair_ranges(normalised, meta, path)
    check_pressure_coupling(normalised, str(path), allow=allow_wrong_pressure)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_mdp(settings))
    return path


def _check_pair_ranges(settings: Mapping[str, Any], meta: Mapping[str, Any], path: Path) -> None:
    pair_cutoff = float(settings.get("nnpot-pair-cutoff", 0))
    if pair_cutoff < meta["cutoff"]:
        raise FFKitError(f"{path}: nnpot-pair-cutoff = {pair_cutoff} nm is shorter than the model cutoff "
                         f"{meta['cutoff']} nm; pairs would be missing")
    for key in ("rvdw", "rcoulomb"):
        if key in settings and float(settings[key]) > float(settings.get("rlist", pair_cutoff)):
            raise FFKitError(f"{path}: {key} = {settings[key]} nm exceeds rlist = {settings.get('rlist')} nm; "
                             "with the pair layout set rlist (and nnpot-pair-cutoff) to at least the MM cut-off")


def write_index(path, groups: Mapping[str, Iterable[int]]) -> Path:
    """A GROMACS .ndx file from 0-based atom indices (written 1-based, 15 per line)."""
    path = Path(path)
    lines = []
    for name, indices in groups.items():
        if not name or any(c.isspace() for c in name):
            raise FFKitError(f"index group name {name!r} must be one word")
        numbers = [int(i) + 1 for i in indices]
        if not numbers or min(numbers) < 1:
            raise FFKitError(f"index group {name!r} must hold at least one atom and only indices >= 0")
        lines.append(f"[ {name} ]")
        lines.extend(" ".join(f"{n:>5d}" for n in numbers[k:k + 15]) for k in range(0, len(numbers), 15))
    path.write_text("\n".join(lines) + "\n")
    return path


def nn_index_groups(n_atoms: int, nn_atoms: Sequence[int], nn_name: str = "NN", mm_name: str = "MM") -> Dict[str, list]:
    """System, NN and (when not empty) MM groups: what a run with -n needs (tc-grps = System)."""
    nn = sorted(set(int(i) for i in nn_atoms))
    if not nn or nn[0] < 0 or nn[-1] >= n_atoms:
        raise FFKitError(f"NN atoms must be indices in 0..{n_atoms - 1}, got {nn[:3]}...{nn[-3:]}")
    mm = sorted(set(range(n_atoms)) - set(nn))
    groups = {"System": list(range(n_atoms)), nn_name: nn}
    if mm:
        groups[mm_name] = mm
    return groups
