"""mdp block, index groups, topology and the refusals ffkit applies before grompp runs."""

import warnings

import pytest
import torch

from ffkit.artifact import compile_model
from ffkit.errors import FFKitError
from ffkit.model.tiers import build_model
from ffkit_gromacs.checks import (NNPotPressureWarning, check_artifact, check_elements, check_pressure_coupling,
                                  parse_mdp)
from ffkit_gromacs.mdp import nn_index_groups, nnpot_settings, write_index, write_mdp
from ffkit_gromacs.nnpot import compile_nnpot
from ffkit_gromacs.topology import pure_nn_topology, split_molecules


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("fast", [1, 6, 8]).double()


@pytest.fixture(scope="module")
def artifact(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("gmx") / "model.pt"
    compile_nnpot(model, path)
    return path


def test_mdp_block_lists_inputs_in_artifact_order(artifact, tmp_path):
    settings = {"integrator": "md", "pcoupl": "no", **nnpot_settings(artifact, "Ethanol")}
    path = write_mdp(tmp_path / "run.mdp", settings)
    text = path.read_text().splitlines()
    assert [line.split("=")[0].strip() for line in text if line.startswith("nnpot")] == [
        "nnpot-active", "nnpot-modelfile", "nnpot-input-group", "nnpot-model-input1", "nnpot-model-input2",
        "nnpot-model-input3", "nnpot-model-input4"]
    mdp = parse_mdp(path)
    assert mdp["nnpot-modelfile"] == str(artifact.resolve())
    assert [mdp[f"nnpot-model-input{k}"] for k in range(1, 5)] == ["atom-positions", "atom-numbers", "box", "pbc"]
    assert mdp["nnpot-input-group"] == "Ethanol"


def test_pair_layout_block_fixes_the_pair_list_range(model, tmp_path):
    path = tmp_path / "pairs.pt"
    compile_nnpot(model, path, layout="pairs")
    settings = nnpot_settings(path, gromacs_version=2026)
    cutoff_nm = model.cutoff / 10.0
    assert float(settings["nnpot-pair-cutoff"]) == pytest.approx(cutoff_nm + 0.1)
    assert settings["verlet-buffer-tolerance"] == "-1" and settings["rlist"] == settings["nnpot-pair-cutoff"]
    assert [settings[f"nnpot-model-input{k}"] for k in (3, 4)] == ["atom-pairs", "pair-shifts"]
    with pytest.raises(FFKitError, match="needs GROMACS 2026 or newer"):
        nnpot_settings(path, gromacs_version=2025)
    with pytest.raises(FFKitError, match="rvdw = 1.0 nm exceeds rlist"):
        write_mdp(tmp_path / "x.mdp", {**settings, "rvdw": "1.0"})


def test_hand_written_input_order_is_refused(artifact, tmp_path):
    settings = nnpot_settings(artifact)
    settings["nnpot-model-input3"], settings["nnpot-model-input4"] = "pbc", "box"
    with pytest.raises(FFKitError, match=r"takes atom-positions atom-numbers box pbc; write: "
                                         r"nnpot-model-input1 = atom-positions"):
        write_mdp(tmp_path / "bad.mdp", settings)


def test_pressure_coupling_with_nnpot_is_refused_or_warned(artifact, tmp_path):
    settings = {"pcoupl": "C-rescale", **nnpot_settings(artifact)}
    with pytest.raises(FFKitError, match="pcoupl = c-rescale with nnpot-active = yes, but GROMACS adds no virial"):
        write_mdp(tmp_path / "npt.mdp", settings)
    assert not (tmp_path / "npt.mdp").exists()
    with pytest.warns(NNPotPressureWarning, match="WRONG PRESSURE"):
        write_mdp(tmp_path / "npt.mdp", settings, allow_wrong_pressure=True)
    mdp_file = tmp_path / "user.mdp"
    mdp_file.write_text("nnpot_active = Yes ; NN on\nPcoupl = Parrinello-Rahman\n")
    with pytest.raises(FFKitError, match="user.mdp: pcoupl = parrinello-rahman"):
        check_pressure_coupling(parse_mdp(mdp_file), str(mdp_file))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_pressure_coupling({"pcoupl": "C-rescale"})           # MM only: fine
        check_pressure_coupling({"nnpot-active": "yes", "pcoupl": "no"})


def test_electrostatic_embedding_is_refused(artifact, tmp_path):
    settings = {**nnpot_settings(artifact), "nnpot_embedding": "electrostatic-model"}
    with pytest.raises(FFKitError, match="nnpot-embedding = electrostatic-model, but ffkit models predict no "
                                         "response to MM charges"):
        write_mdp(tmp_path / "ee.mdp", settings)
    write_mdp(tmp_path / "me.mdp", {**settings, "nnpot_embedding": "Mechanical"})


def test_lammps_and_float64_artifacts_are_refused(model, tmp_path):
    compile_model(model, tmp_path / "lammps.pt", dtype="float64")
    with pytest.raises(FFKitError, match="compiled for engine 'lammps'.*--engine gromacs"):
        check_artifact(tmp_path / "lammps.pt")
    with pytest.raises(FFKitError, match="model file not found"):
        check_artifact(tmp_path / "missing.pt")
    import json
    import zipfile
    compile_nnpot(model, tmp_path / "g.pt")
    with zipfile.ZipFile(tmp_path / "g.pt") as zin, zipfile.ZipFile(tmp_path / "g64.pt", "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("extra/metadata.json"):
                data = json.dumps({**json.loads(data), "dtype": "float64"}).encode()
            zout.writestr(item, data)
    with pytest.raises(FFKitError, match="a float64-only artifact, but GROMACS passes float32 positions"):
        check_artifact(tmp_path / "g64.pt")


def test_index_file_is_one_based_and_wrapped(tmp_path):
    groups = nn_index_groups(40, range(9), "Ethanol", "Water")
    path = write_index(tmp_path / "index.ndx", groups)
    text = path.read_text()
    assert text.startswith("[ System ]\n    1     2")
    body = text.split("[ Ethanol ]\n")[1].split("[")[0].split()
    assert body == [str(k) for k in range(1, 10)]
    assert len(text.split("[ System ]\n")[1].splitlines()[0].split()) == 15
    with pytest.raises(FFKitError, match="NN atoms must be indices in 0..39"):
        nn_index_groups(40, [39, 40])


def test_elements_of_the_nn_group_are_checked(artifact):
    meta = check_artifact(artifact)
    check_elements([6, 1, 8], meta)
    with pytest.raises(FFKitError, match=r"element\(s\) N \(Z=7\) are not in the model, which knows H, C, O"):
        check_elements([6, 7], meta)


def test_pure_nn_topology_zeroes_charges_and_lj():
    top = pure_nn_topology([8, 1, 1] * 4, 3, name="WAT")
    atomtypes = top.split("[ atomtypes ]")[1].split("[")[0].splitlines()[2:4]
    assert [line.split()[:2] for line in atomtypes] == [["H_nn", "1"], ["O_nn", "8"]]
    assert all(line.split()[3:] == ["0.0", "A", "0.0", "0.0"] for line in atomtypes)
    assert "WAT  4" in top.split("[ molecules ]")[1]
    with pytest.raises(FFKitError, match=r"atoms 3..5 are \['H', 'O', 'H'\], not a repeat"):
        split_molecules([8, 1, 1, 1, 8, 1], 3)


def test_pure_nn_run_files_agree_with_each_other(artifact, reference_data, tmp_path):
    from ase.io import read

    from ffkit_gromacs.runs import prepare_pure_nn
    from ffkit.solvation import order_waters

    water = order_waters(read(reference_data / "water_deepmd" / "water.extxyz", index=0))
    assert water.get_chemical_symbols()[:6] == ["O", "H", "H", "O", "H", "H"]
    assert max(water.get_distance(k, k + d) for k in range(0, len(water), 3) for d in (1, 2)) < 1.3
    files = prepare_pure_nn(tmp_path, water, artifact, 3, {"nsteps": "10"}, residue="SOL")
    gro_names = [line[10:15].strip() for line in files.gro.read_text().splitlines()[2:5]]
    top_atoms = files.top.read_text().split("[ atoms ]")[1].split("[")[0].splitlines()[2:5]
    assert gro_names == [line.split()[4] for line in top_atoms] == ["O1", "H1", "H2"]
    assert "SOL  64" in files.top.read_text()
    mdp = parse_mdp(files.mdp)
    assert mdp["nnpot-input-group"] == "NN" and mdp["nsteps"] == "10" and mdp["pcoupl"] == "no"
    assert "[ NN ]" in files.ndx.read_text()
    na = water.copy()
    na.numbers[0] = 11
    with pytest.raises(FFKitError, match=r"element\(s\) Na \(Z=11\) are not in the model"):
        prepare_pure_nn(tmp_path / "na", na, artifact, 3)


def test_ethanol_is_typed_with_opls_aa_and_complete(reference_data):
    from ase.build import molecule
    from ase.io import read

    from ffkit.opls_ethanol import ATOM_TYPES, type_atoms
    from ffkit_gromacs.ethanol import ethanol_moleculetype

    mol = read(reference_data / "rmd17_ethanol" / "test_MD.xyz", index=0)
    types, bonds = type_atoms(mol)
    assert sorted(types) == ["CO", "CT", "HC", "HC", "HC", "HC", "HC", "HO", "OH"]
    assert sum(ATOM_TYPES[t][2] for t in types) == pytest.approx(0.0, abs=1e-9)     # a neutral molecule
    text, counts = ethanol_moleculetype(mol)
    # C2H6O: 8 bonds, 13 angles, 12 proper dihedrals, and the 12 distinct 1-4 pairs they span
    assert counts == {"bonds": 8, "pairs": 12, "angles": 13, "dihedrals": 12}
    sections = {name.strip(): [line for line in body.splitlines()[1:] if line.strip() and not line.startswith(";")]
                for name, body in (part.split("]", 1) for part in text.split("[ ")[1:])}
    assert [len(sections[k]) for k in ("atoms", "bonds", "pairs", "angles", "dihedrals")] == [9, 8, 12, 13, 12]
    o_h = next(line.split() for line in sections["bonds"] if {types[int(a) - 1] for a in line.split()[:2]}
               == {"OH", "HO"})
    assert o_h[3:] == ["0.0945", "462750.4"]
    with pytest.raises(FFKitError, match=r"not an ethanol: CH4O with 5 covalent bonds"):
        ethanol_moleculetype(molecule("CH3OH"))


def test_solvated_systems_have_no_overlaps_and_consistent_files(reference_data, tmp_path):
    import numpy as np
    from ase.io import read

    from ffkit_gromacs.ethanol import RESIDUE, ethanol_atomtypes, ethanol_moleculetype
    from ffkit_gromacs.runs import Solute, prepare_solvated
    from ffkit.solvation import order_waters, solvate

    mol = read(reference_data / "rmd17_ethanol" / "test_MD.xyz", index=0)
    water = order_waters(read(reference_data / "water_deepmd" / "water.extxyz", index=0)).repeat((2, 2, 2))
    system, n_waters = solvate(mol, water, clearance=2.4)
    assert len(system) == len(mol) + 3 * n_waters and 480 < n_waters < len(water) // 3
    closest = min(system.get_distances(k, range(len(mol), len(system)), mic=True).min() for k in range(len(mol)))
    assert 2.4 < closest < 3.0
    assert np.allclose(system.positions[:len(mol)].mean(0), np.asarray(water.cell).sum(0) / 2)

    nn_model = tmp_path / "nn.pt"
    torch.manual_seed(0)
    compile_nnpot(build_model("fast", [1, 6, 8]).double(), nn_model)
    solute = Solute(RESIDUE, mol, ethanol_atomtypes(), ethanol_moleculetype(mol)[0])
    files = prepare_solvated(tmp_path / "mlmm", water, solute, nn_model, {"nsteps": "5"})
    assert files.n_atoms == len(system)
    mdp = parse_mdp(files.mdp)
    assert mdp["nnpot-input-group"] == RESIDUE and mdp["coulombtype"] == "PME" and mdp["nsteps"] == "5"
    assert files.ndx.read_text().split("[ ETH ]\n")[1].split("[")[0].split() == [str(k) for k in range(1, 10)]
    assert f"ETH  1\n  SOL  {n_waters}" in files.top.read_text()
    gro_names = [line[10:15].strip() for line in files.gro.read_text().splitlines()[2:2 + len(mol)]]
    top_atoms = files.top.read_text().split("[ atoms ]")[1].split("[")[0].splitlines()[2:2 + len(mol)]
    assert gro_names == [line.split()[4] for line in top_atoms]
    mm = prepare_solvated(tmp_path / "mm", water, solute)
    assert "nnpot-active" not in parse_mdp(mm.mdp) and mm.top.read_text() == files.top.read_text()
    water_only = prepare_solvated(tmp_path / "water", water)
    assert "SOL  512" in water_only.top.read_text() and "ETH" not in water_only.top.read_text()
    with pytest.raises(FFKitError, match="an NN artifact needs a solute"):
        prepare_solvated(tmp_path / "bad", water, artifact=nn_model)


def test_grompp_embedding_report_is_read_line_by_line():
    from ffkit_gromacs.runs import embedding_report

    text = ("Neural network potential interface is active, topology was modified!\n"
            "Number of embedded NNP atoms: 9\nNumber of regular atoms: 1503\n\nNumber of exclusions made: 9\n"
            "Number of bonds removed: 20\nNumber of InteractionFunction::ConnectBonds (type 5 bonds) added: 8\n"
            "Number of angles removed: 13\nNumber of dihedrals removed: 12\n")
    assert embedding_report(text) == {"embedded NNP atoms": 9, "regular atoms": 1503, "exclusions made": 9,
                                      "bonds removed": 20, "ConnectBonds added": 8, "angles removed": 13,
                                      "dihedrals removed": 12}


def test_speed_results_are_kept_per_system_with_a_table(tmp_path):
    import json

    from ffkit_gromacs.speed import record

    entry = {"system": "water", "atoms": 192, "nn_atoms": 192, "nn_setup": "pure NN", "nn_ns_per_day": 2.0,
             "mm_setup": "SPC/E", "mm_ns_per_day": 50.0, "drift_meV_per_atom_ps": 0.01, "ps": 10.0, "dt_fs": 0.5,
             "threads": 1, "gromacs": "2026.3"}
    path = record(tmp_path / "speed.json", "water", entry)
    record(path, "ethanol", {**entry, "system": "ethanol", "nn_ns_per_day": 10.0})
    record(path, "water", {**entry, "nn_ns_per_day": 4.0})
    results = json.loads(path.read_text())
    assert list(results) == ["water", "ethanol"] and results["water"]["nn_ns_per_day"] == 4.0
    rows = [line for line in path.with_suffix(".md").read_text().splitlines() if line.startswith("| water")]
    assert len(rows) == 1 and "| 4.00 |" in rows[0] and "| 12.5× |" in rows[0]
