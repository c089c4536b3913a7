"""The MD engines ffkit runs in, found through the `ffkit.engines` entry-point group.

ffkit never imports an engine package by name: each engine folder ships an adapter module and
registers it (pyproject.toml), so data and imports flow one way, engine -> ffkit (docs/design.md
§1). An adapter is a module with any of these functions:

- `add_commands(subparsers)`: the engine's own `ffkit` subcommands (GROMACS: deploy, doctor);
- `compile_artifact(source, out, checkpoint=None, **options) -> metadata`: an artifact in the engine's
  calling convention from a model (with its checkpoint) or a LAMMPS artifact (GROMACS: NNPot);
- `single_point(artifact, atoms, elements, workdir) -> (energy eV, forces eV/Å)`: one
  evaluation inside the real engine, for `ffkit compile`'s parity check;
- `run_nve(...)` and `time_models(...)`: MD and timing for `ffkit demo` and `ffkit bench` (LAMMPS).
"""

from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Dict

from .errors import FFKitError

GROUP = "ffkit.engines"


@lru_cache(maxsize=None)
def adapters() -> Dict[str, ModuleType]:
    """Every installed adapter by engine name."""
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


def engine(name: str, needs: str) -> ModuleType:
    """The adapter of engine `name`, which must provide function `needs`."""
    adapter = adapters().get(name)
    if adapter is None:
        raise FFKitError(f"no ffkit adapter for engine {name!r} is installed (entry-point group {GROUP!r} has "
                         f"{', '.join(sorted(adapters())) or 'none'}); reinstall ffkit: "
                         "pip install --no-build-isolation -e <ffkit checkout>")
    if not hasattr(adapter, needs):
        raise FFKitError(f"the {name} adapter ({adapter.__name__}) cannot {needs.replace('_', ' ')}")
    return adapter
