"""Small verbatim subsets of the reference data, shipped so the quick-start and tests work anywhere.

See README.md in this folder for where each file comes from and its license.
"""

from pathlib import Path

from ..errors import FFKitError

_HERE = Path(__file__).resolve().parent


def names() -> list:
    """The bundled data and config files (code, README and licenses excluded)."""
    return sorted(p.name for p in _HERE.iterdir() if p.is_file() and p.suffix in (".xyz", ".yaml"))


def path(name: str) -> Path:
    """Absolute path of a bundled data file, e.g. path("ethanol_train.xyz")."""
    if name not in names():
        raise FFKitError(f"no bundled data file {name!r}; bundled files: {', '.join(names())}")
    return _HERE / name
