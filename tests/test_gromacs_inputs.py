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


def test_pure_nn_run_files_agree_with_each_other(artifact, shared_data, tmp_path):
    from ase.io import read

    from ffkit_gromacs.runs import prepare_pure_nn
    from ffkit_gromacs.topology import order_waters

    water = order_waters(read(shared_data / "water_deepmd" / "water.extxyz", index=0))
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
