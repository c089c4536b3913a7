"""Distribution distances, structure of the DeePMD water frames, and checks.yaml loading."""

from pathlib import Path

import numpy as np
import pytest

from ffkit.validate.checks import Check, ValidationConfig, check_comparison, load_config, structure_of
from ffkit.validate.compare import js_distance, rdf_mae, wasserstein
from ffkit.validate.loading import ValidationInputError, load_run


def gaussian_histogram(centre, width=0.05, x=np.linspace(0.5, 1.5, 201)):
    return x, np.exp(-0.5 * ((x - centre) / width) ** 2)


def test_wasserstein_of_a_shifted_distribution_is_the_shift():
    x, p = gaussian_histogram(1.0)
    _, q = gaussian_histogram(1.03)
    assert wasserstein(x, p, q) == pytest.approx(0.03, abs=1e-3)
    assert wasserstein(x, p, p) == 0.0


def test_js_distance_grows_with_separation_and_is_bounded():
    x, p = gaussian_histogram(1.0)
    near = js_distance(p, gaussian_histogram(1.02)[1])
    far = js_distance(p, gaussian_histogram(1.3)[1])
    assert js_distance(p, p) == 0.0
    assert 0 < near < far <= 1.0
    assert far > 0.99  # 6 widths apart: nearly disjoint, nearly maximal


def test_rdf_mae_interpolates_onto_the_common_range():
    r = np.linspace(0.05, 5.95, 60)
    r_ref = np.linspace(0.025, 7.975, 160)
    g = np.tanh(r)
    assert rdf_mae(r, g, r_ref, np.tanh(r_ref)) < 1e-3
    assert rdf_mae(r, g + 0.2, r_ref, np.tanh(r_ref)) == pytest.approx(0.2, abs=1e-3)
    with pytest.raises(ValueError, match="no r range"):
        rdf_mae(r, g, r_ref + 10, g)


def test_check_limits_and_missing_values():
    assert Check("a", 0.5, 1.0).passed is True
    assert Check("a", 1.5, 1.0).passed is False
    assert Check("a", 0.4, 0.5, kind="min").passed is False
    assert Check("a", 1.5, None).passed is None  # informational
    assert Check("a", float("nan"), 1.0).passed is False
    assert Check("a", None, 1.0).passed is False


def test_training_frames_halves_agree_and_disagree_with_a_strained_copy(reference_data, tmp_path):
    """The two halves of the DeePMD water set have the same structure; the same frames with
    every coordinate stretched by 3% do not (RDF peaks and O-H lengths move)."""
    from ase.io import read, write

    frames = read(reference_data / "water_deepmd" / "water.extxyz", index="::8")
    write(tmp_path / "a.extxyz", frames[0::2])
    write(tmp_path / "b.extxyz", frames[1::2])
    for atoms in frames[1::2]:
        atoms.set_cell(atoms.cell * 1.03, scale_atoms=True)
    write(tmp_path / "strained.extxyz", frames[1::2])
    config = ValidationConfig()
    a, b, strained = (structure_of(load_run(tmp_path / f"{name}.extxyz"), config, with_diffusion=False)
                      for name in ("a", "b", "strained"))
    assert set(a["rdf"]) == {"O-O", "H-O", "H-H"}
    same, same_checks = check_comparison(a, b, config.comparison)
    assert all(c.passed is not False for c in same_checks), same
    differ, differ_checks = check_comparison(a, strained, config.comparison)
    failed = {c.name for c in differ_checks if c.passed is False}
    assert {"compare.bonds.H-O.js", "compare.rdf_mae.H-O"} <= failed
    assert differ["bonded"]["bonds"]["H-O"]["wasserstein"] == pytest.approx(0.03, rel=0.2)
    assert a["density_g_cm3"]["mean"] == pytest.approx(
        strained["density_g_cm3"]["mean"] * 1.03 ** 3, rel=1e-6)


def test_config_defaults_and_overrides(tmp_path):
    path = tmp_path / "checks.yaml"
    path.write_text("energy:\n  max_drift_meV_per_atom_ps: 0.5\n  target_temperature_K: 300\n"
                    "stability:\n  min_distance_A: 0.7\nparity:\n  max_rmse_eV_A: null\n")
    config = load_config(path)
    assert config.energy.max_drift_meV_per_atom_ps == 0.5
    assert config.energy.target_temperature_K == 300
    assert config.stability.min_distance_A == 0.7
    assert config.parity.max_rmse_eV_A is None
    assert config.stability.bond_break_factor == ValidationConfig().stability.bond_break_factor


@pytest.mark.parametrize("text, message", [
    ("energy:\n  max_drift: 1\n", r"checks.yaml: unknown key 'energy.max_drift'; keys of 'energy' are"),
    ("stabilty:\n  min_distance_A: 1\n", r"checks.yaml: unknown section 'stabilty'"),
    ("stability:\n  min_distance_A: small\n", r"'stability.min_distance_A' must be a number"),
    ("stability:\n  min_distance_A: null\n", r"'stability.min_distance_A' cannot be null"),
    ("energy: [1, 2]\n", r"section 'energy' must be a mapping"),
    ("energy: {\n", r"checks.yaml: not valid YAML"),
    ("run:\n  backend: threads\n", r"run.backend .threads. unknown"),
])
def test_bad_config_names_file_and_key(tmp_path, text, message):
    path = tmp_path / "checks.yaml"
    path.write_text(text)
    with pytest.raises(ValidationInputError, match=message):
        load_config(path)


def test_missing_and_empty_files_are_named(tmp_path):
    with pytest.raises(ValidationInputError, match=r"nowhere.data: no such file"):
        load_run(tmp_path / "nowhere.data", tmp_path / "nowhere.dump")
    (tmp_path / "empty.extxyz").write_text("")
    with pytest.raises(ValidationInputError, match=r"empty.extxyz: file is empty"):
        load_run(tmp_path / "empty.extxyz")
    (tmp_path / "bad.extxyz").write_text("3\nnot a comment\nO 0 0\n")
    with pytest.raises(ValidationInputError, match=r"bad.extxyz: cannot read as extended XYZ"):
        load_run(tmp_path / "bad.extxyz")


def test_gromacs_formats_load_with_elements_from_atom_names(reference_data, tmp_path):
    """gro + xtc (written here from the DeePMD frames): elements come from the atom names and
    forces, when asked for, are said to be missing."""
    import MDAnalysis as mda
    from ase.io import read

    frames = read(reference_data / "water_deepmd" / "water.extxyz", index=":6")
    frames[0].write(tmp_path / "water.gro")
    source = load_run(reference_data / "water_deepmd" / "water.extxyz").universe
    with mda.Writer(str(tmp_path / "water.xtc"), source.atoms.n_atoms) as writer:
        for _ in source.trajectory[:6]:
            writer.write(source.atoms)
    run = load_run(tmp_path / "water.gro", tmp_path / "water.xtc")
    assert run.engine == "gromacs" and run.universe.trajectory.n_frames == 6
    assert list(run.universe.atoms.elements[:3]) == list(frames[0].get_chemical_symbols()[:3])
    assert run.force_to_eV_per_A == pytest.approx(1 / 96.485, rel=1e-4)  # MDAnalysis gives kJ/(mol Å)
    structure = structure_of(run, ValidationConfig(), with_diffusion=False)
    assert structure["bonded"]["means"]["bonds:H-O"] == pytest.approx(0.98, abs=0.03)


def test_edr_errors_name_the_file(tmp_path):
    from ffkit.validate.energy import energy_series_from_edr

    with pytest.raises(ValidationInputError, match=r"ener.edr: no such GROMACS edr file"):
        energy_series_from_edr(tmp_path / "ener.edr", 3)
    (tmp_path / "ener.edr").write_bytes(b"not an edr file")
    with pytest.raises(ValidationInputError, match=r"ener.edr: not a GROMACS edr file"):
        energy_series_from_edr(tmp_path / "ener.edr", 3)


def test_example_checks_file_lists_the_defaults():
    example = Path(__file__).resolve().parents[1] / "examples" / "validate" / "checks.yaml"
    assert load_config(example) == ValidationConfig()


def test_real_edr_file_is_read():
    """pyedr ships real GROMACS edr files; the header check must accept them."""
    import pyedr
    from ffkit.validate.energy import energy_series_from_edr

    edr = Path(pyedr.__file__).parent / "tests" / "data" / "cat_small.edr"
    series = energy_series_from_edr(edr, 100)
    assert len(series.time_ps) > 1 and np.all(np.isfinite(series.total_eV))
