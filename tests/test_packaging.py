"""What pyproject.toml promises must hold for the code as written."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _requirement(name: str) -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in deps if Requirement(d).name.lower() == name.lower())


def test_mdanalysis_floor_has_the_features_the_validator_uses():
    # ffkit.validate imports MDAnalysis.guesser and runs analyses with the parallel ResultsGroup: 2.8+
    import MDAnalysis.guesser  # noqa: F401
    from MDAnalysis.analysis.results import ResultsGroup  # noqa: F401

    spec = _requirement("MDAnalysis").specifier
    assert not spec.contains("2.7.0") and spec.contains("2.8.0")


def test_imports_flow_from_the_engines_to_ffkit_only():
    # docs/design.md §1: ffkit finds engines through the `ffkit.engines` entry points, never by name,
    # and nothing in ffkit calls its own command line (the CLI, the demo and benchmarks share the API)
    import re

    from ffkit.engines import adapters

    package = PYPROJECT.parent / "ffkit"
    for source in package.rglob("*.py"):
        text = source.read_text()
        assert not re.search(r"^\s*(from|import)\s+ffkit_(lammps|gromacs)", text, re.MULTILINE), source
        if source.name not in ("cli.py", "__main__.py"):
            assert not re.search(r"from \.+cli import|ffkit\.cli", text), source
    assert {"lammps", "gromacs"} <= set(adapters())
    assert callable(adapters()["lammps"].single_point) and callable(adapters()["gromacs"].compile_artifact)
    runtime = PYPROJECT.parent / "lammps_plugin" / "ffkit_lammps"
    assert sorted(p.name for p in runtime.glob("*.py")) == ["__init__.py"]  # what every lmp start imports
