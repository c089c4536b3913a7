"""`ffkit deploy gromacs` without building: cache keys, refusals, configure flags, doctor."""

import json
import tarfile

import pytest
import torch

from ffkit.errors import FFKitError
from ffkit_gromacs import deploy
from ffkit_gromacs.engine import STAMP, cached_builds, find_gmx


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FFKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FFKIT_GMX", raising=False)
    return tmp_path / "cache"


def test_cache_is_keyed_by_gromacs_and_torch_version(cache):
    prefix = deploy.install_prefix("2026.3")
    assert prefix == cache / f"gromacs-2026.3-torch-{torch.__version__.split('+')[0]}"
    assert deploy.version_from_source("/x/gromacs-2025.4.tar.gz") == "2025.4"
    assert deploy.version_from_source("https://example.invalid/gromacs-2026.3.tar.gz") == "2026.3"
    assert deploy.version_from_source("/x/release.tar.gz") is None


def test_a_finished_build_is_returned_at_once(cache, capsys):
    prefix = deploy.install_prefix("2026.3")
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "gmx").write_text("#!/bin/sh\n")
    (prefix / "bin" / "gmx").chmod(0o755)
    with pytest.raises(FFKitError, match="no such file"):   # no stamp: an unfinished install is rebuilt
        deploy.deploy_gromacs("/nowhere/gromacs-2026.3.tar.gz")
    (prefix / STAMP).write_text(json.dumps({"gromacs_version": "2026.3"}))
    assert deploy.deploy_gromacs("/nowhere/gromacs-2026.3.tar.gz") == prefix / "bin" / "gmx"
    assert "already built" in capsys.readouterr().out
    assert cached_builds() == [prefix] and find_gmx() == prefix / "bin" / "gmx"


def test_bad_sources_are_refused_clearly(cache, tmp_path):
    with pytest.raises(FFKitError, match="cannot tell the GROMACS version from 'release.tar.gz'; pass --version"):
        deploy.deploy_gromacs("release.tar.gz")
    with pytest.raises(FFKitError, match="--source /nowhere/gromacs-2026.3.tar.gz: no such file"):
        deploy.deploy_gromacs("/nowhere/gromacs-2026.3.tar.gz")
    fake = tmp_path / "gromacs-2026.3.tar.gz"
    (tmp_path / "gromacs-2026.3").mkdir()
    (tmp_path / "gromacs-2026.3" / "CMakeLists.txt").write_text("project(Other)\n")
    with tarfile.open(fake, "w:gz") as tar:
        tar.add(tmp_path / "gromacs-2026.3", arcname="gromacs-2026.3")
    with pytest.raises(FFKitError, match="not a GROMACS source tree"):
        deploy.unpack(fake, "2026.3", print)


def test_configure_uses_the_design_flags_and_this_torch(tmp_path):
    options = deploy.configure_options(tmp_path / "src", tmp_path / "prefix")
    for flag in ("-DGMX_NNPOT=TORCH", "-DGMX_GPU=OFF", "-DGMX_MPI=OFF", "-DGMX_FFT_LIBRARY=fftw3",
                 "-DBUILD_TESTING=OFF", "-DGMXAPI=OFF", "-DGMX_PYTHON_PACKAGE=OFF", "-DCMAKE_BUILD_TYPE=Release"):
        assert flag in options
    assert f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}" in options
    assert f"-DCMAKE_INSTALL_PREFIX={tmp_path / 'prefix'}" in options


def test_ffkit_gmx_must_point_at_an_executable(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("FFKIT_GMX", str(tmp_path / "nothing"))
    with pytest.raises(FFKitError, match="FFKIT_GMX=.*nothing: not an executable file"):
        find_gmx()


def test_doctor_names_every_engine_and_the_fix_for_a_missing_gromacs(cache, monkeypatch, capsys):
    from ffkit_gromacs import doctor

    monkeypatch.setenv("PATH", "/usr/bin:/bin")   # no gmx there; the cache is empty
    lines = {name: (ok, detail) for name, ok, detail in doctor.report()}
    assert lines["torch"][0] and lines["torch"][1].startswith(torch.__version__)
    assert "lammps" in lines
    assert lines["gromacs"] == (False, "no gmx found (FFKIT_GMX unset, deploy cache empty, none on PATH): "
                                       "ffkit deploy gromacs --source gromacs-2026.3.tar.gz")
    assert doctor.run(None) == 1
    assert "MISSING  gromacs" in capsys.readouterr().out
