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
