"""`ffkit demo`, the main job, end to end: train, test, compile, LAMMPS MD, validate (short)."""

import json
import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "ffkit", "demo", "--out", str(out), "--epochs", "40"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tier"] == "fast" and summary["epochs"] == "40"
    assert float(summary["LAMMPS MD (ns/day, 1 core)"]) > 0
    assert summary["validation"] == "all checks passed"
    for name in ("model.pt", "test_metrics.json", "parity.png", "run/best.pt", "md/log.lammps", "md/traj.dump",
                 "validate/report.md"):
        assert (out / name).is_file(), name
    assert "force MAE (meV/Å)" in r.stdout
