"""`ffkit bench` end to end with the real `lmp`, on tiny boxes and few steps."""

import csv
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from ffkit.boxes import grid, pack

from ffkit.cli import main
from ffkit.datasets import read_frames
from ffkit.evaluation import evaluate_model
from ffkit.pareto import pareto_front

MODELS = Path(__file__).resolve().parents[1] / "benchmarks" / "models"
RECORD_KEYS = {"tier", "model", "dtype", "atoms", "us_per_atom_step", "ns_per_day", "ratio_to_mm", "f_mae_meV_A",
               "f_rmse_meV_A", "e_mae_meV", "e_rmse_meV", "n_params", "on_front", "steps", "repeats"}


@pytest.fixture(scope="module")
def ethanol(reference_data, tmp_path_factory) -> dict:
    """Small train/test subsets of rMD17 ethanol (the timed box is built from frame 0 of train)."""
    folder = tmp_path_factory.mktemp("ethanol")
    source = reference_data / "rmd17_ethanol"
    ase.io.write(folder / "train.xyz", ase.io.read(source / "train.xyz", index=":20"))
    ase.io.write(folder / "test.xyz", ase.io.read(source / "test_MD.xyz", index=":10"))
    return {"train": folder / "train.xyz", "test": folder / "test.xyz"}


def test_front_hand_made():
    points = [{"tier": name, "us_per_atom_step": x, "f_mae_meV_A": y} for name, x, y in
              [("slow_worse", 50, 40), ("cheap", 1, 300), ("tie_slower", 20, 30), ("mid", 10, 30),
               ("best", 100, 5), ("dominated", 2, 300)]]
    assert [p["tier"] for p in pareto_front(points)] == ["cheap", "mid", "best"]


def test_pack_keeps_molecules_apart_at_the_density(ethanol):
    molecule = ase.io.read(ethanol["train"], index=0)
    box = pack(molecule, 150, 0.789)
    assert len(box) == 4 * np.prod(grid(5)) * 9 >= 150
    assert box.get_masses().sum() / box.get_volume() / 0.602214076 == pytest.approx(0.789)
    i, j, _ = neighbor_list("ijd", box, 2.0)
    assert np.all(i // 9 == j // 9), "atoms of different molecules closer than 2 Å"


@pytest.mark.slow
def test_bench_with_artifacts(ethanol, tmp_path):
    models = [MODELS / "rmd17_ethanol_mm.pt", MODELS / "rmd17_ethanol_fast.pt"]
    stem = tmp_path / "results" / "pareto_ethanol"
    code = main(["bench", "--data", str(ethanol["train"]), "--test", str(ethanol["test"]), "--models",
                 *map(str, models), "--atoms", "150", "--steps", "3", "--repeats", "1", "--out", str(stem),
                 "--no-progress"])
    assert code == 0
    for suffix in (".csv", ".json", ".md", ".png"):
        assert Path(f"{stem}{suffix}").is_file(), suffix
    result = json.loads(Path(f"{stem}.json").read_text())
    tiers = result["tiers"]
    assert [t["tier"] for t in tiers] == ["mm", "fast"]
    for record in tiers:
        assert RECORD_KEYS <= set(record)
        assert record["atoms"] >= 150 and record["us_per_atom_step"] > 0
    anchor = result["anchor"]
    assert anchor["tier"] == "mm-anchor" and anchor["ratio_to_mm"] == 1.0 and anchor["atoms"] >= 150
    for record in tiers:
        assert record["ratio_to_mm"] == pytest.approx(record["us_per_atom_step"] / anchor["us_per_atom_step"])
    expected = evaluate_model(models[1], read_frames(ethanol["test"]))["metrics"]
    assert tiers[1]["f_mae_meV_A"] == pytest.approx(expected["f_mae_meV_A"])
    assert any("MACE" in p["name"] for p in result["peers"])
    with open(f"{stem}.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["tier"] for r in rows] == ["mm", "fast", "mm-anchor"]
    table = Path(f"{stem}.md").read_text()
    assert "MM anchor: SPC/E + PPPM" in table and "MACE NeurIPS 2022" in table
    assert Path(f"{stem}.png").stat().st_size > 20_000


@pytest.mark.slow
def test_bench_places_measured_peers_by_accurates_torchscript_step(ethanol, tmp_path):
    """peers.py times a peer's call against `accurate`'s TorchScript call, so the front scales that ratio by
    `accurate`'s MD step on the TorchScript path (timed in the same run), not by its kernel step."""
    from ffkit.datasets import dataset_hash

    peers = tmp_path / "peers.json"
    peers.write_text(json.dumps([{"peer": "mace", "budget": "tier", "dataset": "rmd17_ethanol",
                                  "test_sha256": dataset_hash(read_frames(ethanol["test"])), "f_mae_meV_A": 20.0,
                                  "e_mae_meV": 5.0, "us_per_atom": 300.0, "accurate_us_same_run": 100.0}]))
    stem = tmp_path / "pareto_ethanol"
    code = main(["bench", "--data", str(ethanol["train"]), "--test", str(ethanol["test"]), "--models",
                 str(MODELS / "rmd17_ethanol_fast.pt"), str(MODELS / "rmd17_ethanol_accurate.pt"), "--atoms", "150",
                 "--steps", "3", "--repeats", "1", "--peers", str(peers), "--out", str(stem), "--no-progress"])
    assert code == 0
    result = json.loads(Path(f"{stem}.json").read_text())
    fast, accurate = result["tiers"]
    assert "torchscript_us_per_atom_step" not in fast
    assert accurate["torchscript_us_per_atom_step"] > 0
    assert accurate["torchscript_us_per_atom_step"] != accurate["us_per_atom_step"]   # two runs, two paths
    mace = next(p for p in result["peers"] if p.get("measured"))
    assert mace["us_per_atom_step"] == pytest.approx(3.0 * accurate["torchscript_us_per_atom_step"])
    assert "on its TorchScript path" in Path(f"{stem}.md").read_text()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:reference energies")
def test_bench_trains_on_water_and_splits_off_a_test_set(reference_data, tmp_path):
    data = tmp_path / "water.xyz"
    ase.io.write(data, ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=":30"))
    code = main(["bench", "--data", str(data), "--tiers", "mm", "--epochs", "1", "--atoms", "200", "--steps", "3",
                 "--repeats", "1", "--out", str(tmp_path / "out") + "/", "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / "out" / "pareto.json").read_text())
    assert [t["tier"] for t in result["tiers"]] == ["mm"]
    assert result["tiers"][0]["n_test"] == 3 and result["tiers"][0]["dtype"] == "float32"
    assert result["anchor"]["atoms"] == result["tiers"][0]["atoms"] == 384  # the same water box, 192 x 2
    assert result["peers"] == []
    assert (tmp_path / "out" / "pareto_work" / "models" / "mm.pt").is_file()


@pytest.mark.parametrize("case, message", [
    ("species", "knows elements H O but the benchmark data also hold C"),
    ("missing model", "model file not found"),
    ("missing data", "file not found"),
    ("both", "not both"),
    ("repeats", "--repeats must be at least 1"),
    ("peers", "not a readable peers.json"),
])
def test_bench_refuses_bad_input(case, message, ethanol, tmp_path, capsys):
    models = {"species": [str(MODELS / "water_deepmd_fast.pt")], "missing model": [str(tmp_path / "nope.pt")]}
    argv = ["bench", "--data", str(ethanol["train"] if case != "missing data" else tmp_path / "absent.xyz"),
            "--test", str(ethanol["test"]), "--models", *models.get(case, [str(MODELS / "rmd17_ethanol_mm.pt")]),
            "--atoms", "50", "--out", str(tmp_path / "out")]
    argv += {"both": ["--tiers", "fast"], "repeats": ["--repeats", "0"],
             "peers": ["--peers", str(tmp_path / "absent.json")]}.get(case, [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "out.json").exists()
