"""The Pareto front and the speed–accuracy outputs."""

import json

from ffkit.pareto import pareto_front, peer_points, plot, write_tables


def _records():
    return [
        {"tier": "mm", "us_per_atom_step": 8.0, "f_mae_meV_A": 250.0, "e_mae_meV": 180.0, "ratio_to_mm": 1.2},
        {"tier": "fast", "us_per_atom_step": 30.0, "f_mae_meV_A": 35.0, "e_mae_meV": 15.0, "ratio_to_mm": 4.6},
        {"tier": "slow_and_worse", "us_per_atom_step": 90.0, "f_mae_meV_A": 60.0, "e_mae_meV": 30.0,
         "ratio_to_mm": 14.0},
        {"tier": "accurate", "us_per_atom_step": 200.0, "f_mae_meV_A": 12.0, "e_mae_meV": 6.0, "ratio_to_mm": 31.0},
    ]


def test_front_drops_dominated_points():
    front = pareto_front(_records())
    assert [p["tier"] for p in front] == ["mm", "fast", "accurate"]


def test_tables_and_plot(tmp_path):
    records, peers = _records(), peer_points()
    assert all(p["us_per_atom_step"] > 0 for p in peers)
    write_tables(records, peers, tmp_path / "pareto")
    data = json.loads((tmp_path / "pareto.json").read_text())
    assert [t["on_front"] for t in data["tiers"]] == [True, True, False, True]
    assert "MACE" in (tmp_path / "pareto.md").read_text()
    assert (tmp_path / "pareto.csv").read_text().splitlines()[0].startswith("tier,us_per_atom_step")
    plot(records, 6.5, tmp_path / "pareto.png", "test", peers)
    assert (tmp_path / "pareto.png").stat().st_size > 20_000
