"""Refuse GROMACS set-ups that would run but give wrong answers, before grompp sees them.

The main one: GROMACS's NNPot adds no virial for the NN forces (measured in 2025.2: a spring
between two NN atoms moved the virial by -2 instead of +779 kJ/mol; the 2026 NNPot force provider
still never calls `addVirialContribution`), and the model cannot pass one back (GROMACS reads
only energy and forces). So the pressure is wrong and pressure coupling drives the box wrongly.
"""

import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ffkit.artifact import read_metadata
from ffkit.errors import FFKitError

NO_PRESSURE_COUPLING = {"", "no"}


class NNPotPressureWarning(UserWarning):
    """Pressure coupling with NNPot was allowed explicitly: the pressure ignores the NN virial."""


def mdp_key(key: str) -> str:
    """GROMACS treats '_' and '-' in mdp names alike and ignores case."""
    return key.strip().lower().replace("_", "-")


def parse_mdp(path) -> Dict[str, str]:
    """An mdp file as {normalised key: value}; comments and blank lines dropped."""
    path = Path(path)
    if not path.is_file():
        raise FFKitError(f"{path}: mdp file not found")
    settings: Dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split(";", 1)[0].strip()
        if not text:
            continue
        if "=" not in text:
            raise FFKitError(f"{path}:{number}: expected 'name = value', got {line.strip()!r}")
        key, value = text.split("=", 1)
        settings[mdp_key(key)] = value.strip()
    return settings


def nnpot_active(settings: Mapping[str, Any]) -> bool:
    value = str(settings.get("nnpot-active", "no")).strip().lower()
    return value in {"yes", "true", "on", "1"}


def check_pressure_coupling(settings: Mapping[str, Any], source: str = "mdp", allow: bool = False) -> None:
    """Refuse NNPot with pressure coupling (or only warn, loudly, when `allow` is set)."""
    settings = {mdp_key(k): v for k, v in settings.items()}
    pcoupl = str(settings.get("pcoupl", "no")).strip().lower()
    if not nnpot_active(settings) or pcoupl in NO_PRESSURE_COUPLING:
        return
    message = (f"{source}: pcoupl = {pcoupl} with nnpot-active = yes, but GROMACS adds no virial for "
               "NNPot forces, so the pressure and the box it drives would be wrong. Run at a fixed box "
               "(pcoupl = no; equilibrate the density with the MM force field, or with LAMMPS/ASE, which "
               "get the ffkit virial)")
    if not allow:
        raise FFKitError(message + ", or pass allow_wrong_pressure=True to run anyway.")
    warnings.warn("WRONG PRESSURE: " + message + ".", NNPotPressureWarning, stacklevel=2)


def check_embedding(settings: Mapping[str, Any], source: str = "mdp") -> None:
    """Only mechanical embedding: `electrostatic-model` (GROMACS 2026) wants a model that takes the
    MM charges and positions and returns forces on the MM atoms, which no ffkit model does
    (gromacs_interface/README.md, "Embedding")."""
    settings = {mdp_key(k): v for k, v in settings.items()}
    embedding = str(settings.get("nnpot-embedding", "mechanical")).strip().lower()
    if embedding != "mechanical":
        raise FFKitError(f"{source}: nnpot-embedding = {embedding}, but ffkit models predict no response to MM "
                         "charges and return no forces on MM atoms, which electrostatic-model embedding needs "
                         "(GROMACS would also zero the NN atoms' MM charges); use nnpot-embedding = mechanical")


def check_artifact(path, gromacs_version: Optional[int] = None) -> Dict[str, Any]:
    """The metadata of an artifact GROMACS can run, or a clear error saying why it cannot."""
    path = Path(path)
    if path.suffix != ".pt":
        raise FFKitError(f"{path}: GROMACS loads NNPot models only from files ending in .pt")
    meta = read_metadata(path)
    if meta.get("engine") != "gromacs":
        raise FFKitError(f"{path}: compiled for engine {meta.get('engine')!r} (another calling convention); "
                         "GROMACS needs `ffkit compile CHECKPOINT --engine gromacs --out model.pt`")
    if meta.get("dtype") != "float32":
        raise FFKitError(f"{path}: a {meta.get('dtype')}-only artifact, but GROMACS passes float32 positions; "
                         "recompile with `ffkit compile CHECKPOINT --engine gromacs` (inputs are float32; "
                         "the model may still compute in float64)")
    needed = meta.get("gromacs_min_version", 2025)
    if gromacs_version is not None and gromacs_version < needed:
        raise FFKitError(f"{path}: layout {meta.get('layout')!r} needs GROMACS {needed} or newer "
                         f"(this is {gromacs_version}); compile with --layout positions")
    return meta


def check_model_inputs(settings: Mapping[str, Any], meta: Mapping[str, Any], source: str = "mdp") -> None:
    """The mdp's nnpot-model-input1..N must be exactly the artifact's inputs, in order."""
    settings = {mdp_key(k): v for k, v in settings.items()}
    given = [str(settings.get(f"nnpot-model-input{k}", "")).strip() for k in range(1, 10)]
    while given and not given[-1]:
        given.pop()
    expected = list(meta["mdp_inputs"])
    if given != expected:
        lines = "; ".join(f"nnpot-model-input{k} = {name}" for k, name in enumerate(expected, start=1))
        raise FFKitError(f"{source}: nnpot-model-input1..{len(given)} = {' '.join(given) or '(none)'}, but the "
                         f"artifact (layout {meta.get('layout')!r}) takes {' '.join(expected)}; write: {lines}")


def check_elements(numbers, meta: Mapping[str, Any], source: str = "NN group") -> None:
    """Every atomic number in the NN group must be one the model knows."""
    from ase.data import chemical_symbols

    unknown = sorted(set(int(z) for z in numbers) - set(meta["species"]))
    if unknown:
        names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in unknown)
        raise FFKitError(f"{source}: element(s) {names} are not in the model, which knows "
                         f"{', '.join(meta['species_symbols'])}; take them out of the NN group")
