"""Domain decomposition is exact: serial and `mpirun -np 2` runs agree after 20 MD steps, also when a
subdomain is thinner than the model cutoff; and NVE conserves energy on the water box."""

import ase.io
import numpy as np
import pytest

from ffkit.artifact import compile_model
from ffkit.model.tiers import build_model
from lammps_harness import read_dump, run_lmp, thermo_rows, write_data, write_toy_artifact

WATER = ("O", "H")


@pytest.fixture(scope="module")
def water_data(reference_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("water") / "water.data"
    write_data(path, ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=3), WATER)
    return path


def _md(workdir, data, model, nprocs, processors="", steps=20, dt=0.0005, every=20, thermo=20):
    workdir.mkdir(parents=True, exist_ok=True)
    out = run_lmp(workdir, f"""units metal
atom_style atomic
{processors}
read_data {data}
pair_style ffkit
pair_coeff * * {model} O H
velocity all create 300 4928459 loop geom
fix nve all nve
timestep {dt}
dump traj all custom {every} dump.traj id x y z fx fy fz
dump_modify traj sort id format float %.17g
thermo_style custom step pe ke etotal press pxy
thermo_modify format float %.17g
thermo {thermo}
run {steps}
""", nprocs=nprocs)
    return read_dump(workdir / "dump.traj"), thermo_rows(out), out


@pytest.mark.slow
@pytest.mark.parametrize("case", ["toy-5A", "toy-7A-thin-subdomains", "accurate-tier"])
def test_serial_equals_two_ranks_after_20_steps(tmp_path, water_data, case):
    if case == "accurate-tier":
        model = tmp_path / "accurate.pt"
        compile_model(build_model("accurate", [1, 8]), model, dtype="float64")
    else:
        cutoff = 7.0 if "7A" in case else 5.0
        model = write_toy_artifact(tmp_path / "toy.pt", WATER, cutoff=cutoff)
    # 12.44 A box on a 1x2x1 grid: 6.2 A thick subdomains, thinner than a 7 A cutoff (+2 A skin)
    processors = "processors 1 2 1" if "thin" in case else ""
    serial, serial_thermo, _ = _md(tmp_path / "serial", water_data, model, 1)
    parallel, parallel_thermo, out = _md(tmp_path / "np2", water_data, model, 2, processors)
    assert "1 by 2 by 1 MPI processor grid" in out or not processors
    for step in (0, 20):
        np.testing.assert_allclose(parallel[step][:, 4:7], serial[step][:, 4:7], rtol=0, atol=1e-10,
                                   err_msg=f"forces at step {step}")
        np.testing.assert_allclose(parallel[step][:, 1:4], serial[step][:, 1:4], rtol=0, atol=1e-10)
    for a, b in zip(serial_thermo, parallel_thermo):
        for key in ("PotEng", "TotEng", "Press", "Pxy"):
            assert abs(a[key] - b[key]) <= 1e-10 * max(abs(a[key]), 1.0), (key, a, b)


@pytest.mark.slow
def test_nve_energy_conservation(tmp_path, water_data):
    """0.5 ps NVE of the 192-atom water box (toy model, 0.5 fs): drift well below 1 meV/atom/ps."""
    model = write_toy_artifact(tmp_path / "toy.pt", WATER, cutoff=5.0)
    _, rows, _ = _md(tmp_path / "nve", water_data, model, 1, steps=1000, every=1000, thermo=10)
    t = np.array([r["Step"] for r in rows]) * 0.0005
    etot = np.array([r["TotEng"] for r in rows])
    drift = np.polyfit(t, etot, 1)[0] / 192 * 1000.0  # meV/atom/ps
    fluctuation = (etot.max() - etot.min()) / 192 * 1000.0
    print(f"NVE drift {drift:+.4f} meV/atom/ps, total-energy range {fluctuation:.4f} meV/atom over 0.5 ps")
    assert abs(drift) < 0.1, f"drift {drift} meV/atom/ps"
    kinetic = np.array([r["KinEng"] for r in rows])
    assert kinetic.std() > 0 and np.isfinite(etot).all()
