"""Readers, units, validation messages, splits, hashes and reference energies, on the real data."""

import re
import shutil
import warnings
from dataclasses import replace

import numpy as np
import pytest

from ffkit import bundled
from ffkit.datasets import Frame, dataset_hash, read_frames, split_frames
from ffkit.errors import DataError
from ffkit.reference import fit_reference_energies, isolated_atom_energies
from ffkit.units import energy_factor, force_factor, length_factor

# A valid water frame; tests break one thing in a copy of it and put that copy at frame 1.
WATER = """3
Properties=species:S:1:pos:R:3:forces:R:3 energy=-10.5 pbc="F F F"
O 0.0 0.0 0.0 0.1 0.2 0.3
H 0.96 0.0 0.0 -0.1 0.0 0.0
H -0.24 0.93 0.0 0.0 -0.2 -0.3
"""


def xyz_file(tmp_path, middle_frame, name="data.xyz"):
    """A 3-frame file whose frame 1 is `middle_frame`."""
    path = tmp_path / name
    path.write_text(WATER + middle_frame + WATER)
    return path


def raise_message(path, **options):
    with pytest.raises(DataError) as info:
        read_frames(path, **options)
    return str(info.value)


def text_frames(path):
    """(comment line, atom lines) of every frame, split independently of the reader under test."""
    lines = path.read_text().splitlines()
    frames, start = [], 0
    while start < len(lines) and lines[start].strip():
        n = int(lines[start])
        frames.append((lines[start + 1], lines[start + 2:start + 2 + n]))
        start += n + 2
    return frames


@pytest.fixture(scope="session")
def ethanol(reference_data):
    return read_frames(reference_data / "rmd17_ethanol" / "train.xyz", index=":50")


@pytest.fixture(scope="session")
def water_xyz(reference_data):
    return read_frames(reference_data / "water_deepmd" / "water.extxyz")


# ---------------------------------------------------------------- readers

def test_extxyz_matches_the_text(reference_data):
    path = reference_data / "rmd17_ethanol" / "train.xyz"
    frames = read_frames(path, index=":20")
    for k, (comment, atoms) in enumerate(text_frames(path)[:20]):
        frame = frames[k]
        assert frame.source == f"{path}:{k}"
        assert frame.energy == float(re.search(r"energy=(\S+)", comment).group(1))
        values = np.array([line.split()[1:] for line in atoms], dtype=float)
        np.testing.assert_array_equal(frame.positions, values[:, :3])
        np.testing.assert_array_equal(frame.forces, values[:, 3:])
        assert [line.split()[0] for line in atoms] == ["C", "C", "O", "H", "H", "H", "H", "H", "H"]
        np.testing.assert_array_equal(frame.numbers, [6, 6, 8, 1, 1, 1, 1, 1, 1])
        assert not frame.pbc.any()


def test_deepmd_folder_is_water_extxyz_frame_for_frame(reference_data, water_xyz):
    root = reference_data / "water_deepmd"
    frames = read_frames(root / "deepmd_npy")
    origins = re.findall(r"source_system=(\S+)", (root / "water.extxyz").read_text())
    assert len(frames) == len(water_xyz) == len(origins) == 400
    for npy, xyz, origin in zip(frames, water_xyz, origins):
        set_dir, index = npy.source.rsplit(":", 1)
        assert set_dir.endswith(origin)
        np.testing.assert_array_equal(npy.numbers, xyz.numbers)
        np.testing.assert_array_equal(npy.pbc, [True, True, True])
        np.testing.assert_array_equal(npy.pbc, xyz.pbc)
        # the extxyz prints the float32 values with 8 decimals: equal to within half a printed
        # digit (exact for the box; not always for small values, where a float32 ulp is < 1e-8)
        np.testing.assert_array_equal(npy.cell, xyz.cell.astype(np.float32))
        for a, b in ((npy.positions, xyz.positions), (npy.forces, xyz.forces)):
            np.testing.assert_allclose(a, b, rtol=0, atol=5.0001e-9)
        assert npy.energy == np.float32(xyz.energy)
    assert frames[160].source.endswith("data_1/set.001:0")


def test_deepmd_single_system_and_nopbc(reference_data, tmp_path):
    system = reference_data / "water_deepmd" / "deepmd_npy" / "data_1"
    frames = read_frames(system)
    assert len(frames) == 160 and frames[80].source == f"{system}/set.001:0"
    molecule = tmp_path / "molecule"
    shutil.copytree(system, molecule)
    (molecule / "nopbc").touch()
    for set_dir in molecule.glob("set.*"):
        (set_dir / "box.npy").unlink()
    loose = read_frames(molecule, index="0:3")
    assert not loose[0].pbc.any() and not loose[0].cell.any()
    np.testing.assert_array_equal(loose[2].positions, frames[2].positions)


def test_npz_both_key_styles_and_units(ethanol, tmp_path):
    R = np.stack([f.positions for f in ethanol])
    F = np.stack([f.forces for f in ethanol])
    E = np.array([f.energy for f in ethanol])
    np.savez(tmp_path / "short.npz", R=R, z=ethanol[0].numbers, E=E[:, None], F=F)
    kcal = energy_factor("kcal/mol")
    np.savez(tmp_path / "rmd17.npz", coords=R, nuclear_charges=ethanol[0].numbers.astype(np.uint8),
             energies=E / kcal, forces=F / kcal)
    short = read_frames(tmp_path / "short.npz")
    original = read_frames(tmp_path / "rmd17.npz", energy_unit="kcal/mol")
    for frames in (short, original):
        assert len(frames) == len(ethanol)
        for a, b in zip(frames, ethanol):
            np.testing.assert_array_equal(a.numbers, b.numbers)
            np.testing.assert_array_equal(a.positions, b.positions)
            np.testing.assert_allclose(a.forces, b.forces, rtol=1e-14, atol=1e-13)
            assert a.energy == pytest.approx(b.energy, rel=1e-14)
    np.savez(tmp_path / "one.npz", R=R[3], z=ethanol[0].numbers, E=E[3], F=F[3])
    (one,) = read_frames(tmp_path / "one.npz")
    assert one.energy == ethanol[3].energy and one.source.endswith("one.npz:0")


def test_index_selection_and_bundled_subsets(reference_data, water_xyz):
    every_tenth = read_frames(bundled.path("water_frames.xyz"))
    assert len(every_tenth) == 40
    assert dataset_hash(every_tenth) == dataset_hash(water_xyz[::10])
    assert dataset_hash(read_frames(reference_data / "water_deepmd" / "water.extxyz", index="::10")) \
        == dataset_hash(every_tenth)
    assert read_frames(bundled.path("water_frames.xyz"), index=-1)[0].source.endswith(":39")
    # bundled frames are verbatim prefixes of the originals
    for name, original in (("ethanol_train.xyz", "train.xyz"), ("ethanol_test.xyz", "test_MD.xyz"),
                           ("ethanol_isolated_atoms.xyz", "isolated_atoms.xyz")):
        copy = bundled.path(name).read_bytes()
        assert (reference_data / "rmd17_ethanol" / original).read_bytes().startswith(copy)
    assert len(read_frames(bundled.path("ethanol_train.xyz"))) == 300
    assert len(read_frames(bundled.path("ethanol_test.xyz"))) == 200
    with pytest.raises(Exception, match="ethanol_train.xyz"):
        bundled.path("ethanol.xyz")


# ---------------------------------------------------------------- units

def test_unit_factors():
    assert energy_factor("eV") == 1.0 and length_factor("angstrom") == 1.0
    assert 1.0 / energy_factor("kJ/mol") == pytest.approx(96.485332, rel=1e-8)
    assert 1.0 / energy_factor("kcal/mol") == pytest.approx(23.060548, rel=1e-7)
    assert energy_factor("hartree") == pytest.approx(27.211386, rel=1e-7)
    assert energy_factor("Ry") == pytest.approx(13.605693, rel=1e-7)
    assert energy_factor("meV") == 1e-3
    assert length_factor("nm") == 10.0 and length_factor("bohr") == pytest.approx(0.52917721, rel=1e-8)
    assert energy_factor("real") == energy_factor("kcal/mol") and length_factor("real") == 1.0
    assert force_factor("kJ/mol", "nm") == pytest.approx(1 / 964.85332, rel=1e-8)
    for bad, call in (("MeV", energy_factor), ("furlong", length_factor), ("nm", energy_factor)):
        with pytest.raises(DataError, match="accepted: .*kcal/mol|accepted: angstrom, nm, bohr"):
            call(bad)


def test_reading_converts_units(tmp_path):
    path = xyz_file(tmp_path, WATER)
    base = read_frames(path)[1]
    scaled = read_frames(path, energy_unit="kJ/mol", length_unit="nm")[1]
    np.testing.assert_allclose(scaled.positions, base.positions * 10.0)
    assert scaled.energy == pytest.approx(base.energy / 96.48533212, rel=1e-12)
    np.testing.assert_allclose(scaled.forces, base.forces / 964.8533212, rtol=1e-12)
    assert "accepted" in raise_message(path, energy_unit="kcal")


# ---------------------------------------------------------------- validation messages

def assert_names(message, path, frame, field):
    assert str(path) in message and f"frame {frame}" in message and field in message, message


def test_missing_energy_and_forces_say_what_was_found(tmp_path):
    renamed = WATER.replace("energy=", "REF_energy=").replace("forces:R:3", "REF_forces:R:3")
    path = xyz_file(tmp_path, renamed)
    message = raise_message(path)
    assert_names(message, path, 1, "'energy'")
    assert "REF_energy" in message and "--energy-key" in message
    message = raise_message(path, energy_key="REF_energy", require_energy=False)
    assert_names(message, path, 1, "'forces'")
    assert "REF_forces" in message and "--forces-key" in message
    # frames 0 and 2 use the standard names, so naming the REF_ ones fails at frame 0
    message = raise_message(path, energy_key="REF_energy", forces_key="REF_forces")
    assert_names(message, path, 0, "'REF_energy'")
    assert "per-atom properties: forces" in message
    frames = read_frames(path, require_energy=False, require_forces=False)
    assert frames[1].energy is None and frames[1].forces is None and frames[0].energy == -10.5
    (middle,) = read_frames(path, energy_key="REF_energy", forces_key="REF_forces", index=1)
    assert middle.energy == -10.5 and middle.forces[0, 2] == 0.3


@pytest.mark.parametrize("field, broken", [
    ("positions", WATER.replace("H 0.96 0.0 0.0", "H nan 0.0 0.0")),
    ("energy", WATER.replace("energy=-10.5", "energy=inf")),
    ("forces", WATER.replace("0.1 0.2 0.3", "0.1 NaN 0.3")),
])
def test_non_finite_values(tmp_path, field, broken):
    path = xyz_file(tmp_path, broken)
    message = raise_message(path)
    assert_names(message, path, 1, f"'{field}'")
    assert "non-finite" in message


def test_forces_shape_mismatch(tmp_path, ethanol):
    two_columns = WATER.replace("forces:R:3", "forces:R:2").replace(" 0.3\n", "\n").replace(
        " 0.0\nH -0.24", "\nH -0.24").replace("-0.2 -0.3", "-0.2")
    assert two_columns.count("\n") == 5 and "0.1 0.2\n" in two_columns
    path = xyz_file(tmp_path, two_columns)
    assert_names(raise_message(path), path, 1, "'forces'")
    npz = tmp_path / "short.npz"
    np.savez(npz, R=np.stack([f.positions for f in ethanol[:3]]), z=ethanol[0].numbers,
             E=[f.energy for f in ethanol[:3]], F=np.stack([f.forces[:8] for f in ethanol[:3]]))
    message = raise_message(npz)
    assert_names(message, npz, 0, "'F'")
    assert "(8, 3)" in message and "9 atoms" in message


def test_unknown_elements(tmp_path, ethanol):
    path = xyz_file(tmp_path, WATER.replace("O 0.0", "Qq 0.0"))
    message = raise_message(path)
    assert_names(message, path, 1, "'species'")
    assert "Qq" in message
    path = xyz_file(tmp_path, WATER.replace("O 0.0", "X 0.0"))
    assert_names(raise_message(path), path, 1, "atomic number 0")
    npz = tmp_path / "z.npz"
    np.savez(npz, R=ethanol[0].positions, z=np.r_[ethanol[0].numbers[:-1], 119], E=1.0, F=ethanol[0].forces)
    message = raise_message(npz)
    assert_names(message, npz, 0, "'numbers'")
    assert "atom 8" in message and "119" in message


def test_empty_missing_and_unparseable_files(tmp_path):
    empty = tmp_path / "empty.xyz"
    empty.write_text("\n")
    assert str(empty) in raise_message(empty) and "no frames" in raise_message(empty)
    assert "file not found" in raise_message(tmp_path / "nothing.xyz")
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text(WATER + "hello world\n")
    assert_names(raise_message(garbage), garbage, 1, "atom count")
    bad_number = xyz_file(tmp_path, WATER.replace("H 0.96", "H 0.9.6"), name="bad_number.xyz")
    message = raise_message(bad_number)
    assert_names(message, bad_number, 1, "cannot parse")
    assert "lines 6-10" in message
    extra = xyz_file(tmp_path, WATER.replace("-0.1 0.0 0.0", "-0.1 0.0 0.0 0.0"), name="extra.xyz")
    message = raise_message(extra)
    assert_names(message, extra, 1, "line 9 has 8 values")
    assert "Properties" in message
    assert "folder" in raise_message(tmp_path, fmt="extxyz")
    truncated = tmp_path / "truncated.xyz"
    truncated.write_text(WATER + WATER[:WATER.rindex("H -0.24")])
    assert_names(raise_message(truncated), truncated, 1, "truncated")
    gap = tmp_path / "gap.xyz"
    gap.write_text(WATER + "\n" + WATER)
    assert_names(raise_message(gap), gap, 1, "blank line 6")
    unknown = tmp_path / "data.csv"
    unknown.write_text("x")
    assert "fmt=" in raise_message(unknown)
    not_npz = tmp_path / "broken.npz"
    not_npz.write_text("not a zip")
    assert str(not_npz) in raise_message(not_npz)


def test_cell_problems(tmp_path):
    no_cell = xyz_file(tmp_path, WATER.replace('pbc="F F F"', 'pbc="T T T"'))
    message = raise_message(no_cell)
    assert_names(message, no_cell, 1, "'cell'")
    assert "pbc" in message
    flat = WATER.replace('pbc="F F F"', 'Lattice="5 0 0 0 5 0 5 0 0" pbc="T T T"')
    degenerate = xyz_file(tmp_path, flat, name="flat.xyz")
    assert_names(raise_message(degenerate), degenerate, 1, "degenerate")
    slab = WATER.replace('pbc="F F F"', 'Lattice="5 0 0 0 5 0 0 0 0" pbc="T T F"')
    assert read_frames(xyz_file(tmp_path, slab, name="slab.xyz"))[1].pbc.tolist() == [True, True, False]


def test_duplicate_atoms(tmp_path):
    twin = WATER.replace("3\n", "4\n", 1) + "H 0.96 0.05 0.0 0.0 0.0 0.0\n"
    path = xyz_file(tmp_path, twin)
    message = raise_message(path)
    assert_names(message, path, 1, "'positions'")
    assert "atoms 1 and 3" in message and "0.0500 Å" in message
    across = ('2\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 '
              'pbc="T T T"\nH 0.01 1 1 0 0 0\nH 3.96 1 1 0 0 0\n')
    path = xyz_file(tmp_path, across, name="across.xyz")
    message = raise_message(path)
    assert_names(message, path, 1, "periodic image")
    assert "0.0500 Å" in message


def test_deepmd_errors(reference_data, tmp_path):
    system = tmp_path / "system"
    shutil.copytree(reference_data / "water_deepmd" / "deepmd_npy" / "data_0", system)
    energy = np.load(system / "set.000" / "energy.npy")
    (system / "set.000" / "energy.npy").unlink()
    message = raise_message(system, index="5:")
    assert_names(message, system / "set.000", 5, "'energy.npy'")
    assert "coord.npy" in message and "force.npy" in message
    np.save(system / "set.000" / "energy.npy", energy[:-1])
    assert "79" in raise_message(system) and "energy.npy" in raise_message(system)
    np.save(system / "set.000" / "energy.npy", energy)
    assert len(read_frames(system)) == 80
    (system / "type_map.raw").write_text("O\n")
    assert "type_map.raw" in raise_message(system) and "type 1" in raise_message(system)
    (system / "type_map.raw").unlink()
    assert "one element symbol per line" in raise_message(system)
    assert "no DeePMD system" in raise_message(tmp_path / "system" / "set.000", fmt="deepmd")


# ---------------------------------------------------------------- split, hash

def test_split_is_seeded_and_disjoint(ethanol):
    train, valid = split_frames(ethanol, 0.1, seed=3)
    assert len(valid) == 5 and len(train) == 45
    assert sorted(f.source for f in train + valid) == sorted(f.source for f in ethanol)
    again = split_frames(ethanol, 0.1, seed=3)[1]
    assert [f.source for f in again] == [f.source for f in valid]
    other = split_frames(ethanol, 0.1, seed=4)[1]
    assert [f.source for f in other] != [f.source for f in valid]
    assert len(split_frames(ethanol, 7, seed=0)[1]) == 7
    with pytest.raises(DataError, match="nothing would be left"):
        split_frames(ethanol, 50)


def test_dataset_hash_sees_every_value(ethanol):
    reference = dataset_hash(ethanol)
    assert reference == dataset_hash(list(ethanol)) and len(reference) == 64
    assert dataset_hash(ethanol[::-1]) != reference
    for change in ("positions", "forces", "energy", "cell"):
        frames = list(ethanol)
        first = frames[0]
        nudged = Frame(first.numbers, first.positions.copy(), first.cell.copy(), first.pbc,
                       first.energy, first.forces.copy(), first.source)
        if change == "energy":
            nudged.energy = np.nextafter(first.energy, 0.0)
        else:
            getattr(nudged, change)[0, 0] = np.nextafter(getattr(nudged, change)[0, 0], 1e9)
        frames[0] = nudged
        assert dataset_hash(frames) != reference, change


# ---------------------------------------------------------------- reference energies

def test_isolated_atom_energies(reference_data, tmp_path):
    path = reference_data / "rmd17_ethanol" / "isolated_atoms.xyz"
    expected = {}
    for comment, atoms in text_frames(path):
        symbol = atoms[0].split()[0]
        expected[{"H": 1, "C": 6, "O": 8, "N": 7}[symbol]] = float(re.search(r"energy=(\S+)", comment).group(1))
    assert isolated_atom_energies(path) == expected
    assert isolated_atom_energies(bundled.path("ethanol_isolated_atoms.xyz")) == expected
    with pytest.raises(DataError, match=r"data.xyz, frame 0: .*exactly one atom"):
        isolated_atom_energies(xyz_file(tmp_path, WATER))


def test_fit_recovers_known_element_energies(ethanol, reference_data):
    # real geometries, energies made from known per-element values plus small noise
    rng = np.random.default_rng(0)
    truth = {1: -13.6, 6: -1025.3, 8: -2035.6}
    isolated = read_frames(reference_data / "rmd17_ethanol" / "isolated_atoms.xyz", require_forces=False)
    frames = ethanol[:10] + [f for f in isolated if int(f.numbers[0]) in truth]
    mixed = [replace(f, energy=sum(truth[int(z)] for z in f.numbers) + rng.normal(0, 1e-3)) for f in frames]
    fitted = fit_reference_energies(mixed, [1, 6, 8])
    for z in truth:
        assert fitted[z] == pytest.approx(truth[z], abs=5e-3)


def test_fit_warns_when_not_identifiable(ethanol):
    with pytest.warns(UserWarning, match="not identifiable"):
        fitted = fit_reference_energies(ethanol, [1, 6, 8])
    per_molecule = 6 * fitted[1] + 2 * fitted[6] + fitted[8]
    assert per_molecule == pytest.approx(np.mean([f.energy for f in ethanol]), abs=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="not in species"):
            fit_reference_energies(ethanol, [1, 6])
