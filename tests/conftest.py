"""Shared fixtures: where the reference data lives (the repository's data/, see data/README.md)."""

from pathlib import Path

import pytest

REFERENCE_DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """data/ in the repository: rMD17 ethanol and the DeePMD water frames, with their licences.

    Missing data is a broken checkout, not a reason to skip: the tests fail and say so."""
    needed = ("rmd17_ethanol/train.xyz", "water_deepmd/water.extxyz")
    missing = [p for p in needed if not (REFERENCE_DATA / p).is_file()]
    if missing:
        pytest.fail(f"reference data missing from {REFERENCE_DATA}: {', '.join(missing)}; "
                    "restore data/ from the repository (git checkout -- data)")
    return REFERENCE_DATA
