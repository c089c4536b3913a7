"""`ffkit validate` on trajectories made here by the real LAMMPS, with faults injected into them.

Each LAMMPS run is done once per session (water: SPC/E-like flexible water started from a
DeePMD frame; argon: Lennard-Jones in metal and real units for force parity).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.lj import LennardJones
from ase.io import read

from ffkit.cli import main
from ffkit.validate.checks import ValidationConfig, check_parity, load_config, validate
from ffkit.validate.energy import energy_series_from_lammps_log, energy_summary, read_lammps_log
from ffkit.validate.loading import ValidationInputError, load_run
from ffkit.validate.stability import StabilityAnalysis
from ffkit.validate.structure import BondedDistributions

pytestmark = pytest.mark.slow

LMP = shutil.which("lmp", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
WATER_FF = """
pair_style lj/cut/coul/dsf 0.2 6.0
pair_coeff 1 1 0.1553 3.166
pair_coeff * 2 0.0 1.0
pair_modify shift yes
bond_style harmonic
bond_coeff 1 450 1.0
angle_style harmonic
angle_coeff 1 55 109.47
special_bonds lj/coul 0.0 0.0 0.0
"""
# Equilibrate 0.5 ps at 300 K, then a 0.5 ps run dumped every 20 steps (51 frames).
WATER_NVE = WATER_FF + """
velocity all create 300 12345 mom yes rot yes
timestep 0.5
thermo_style custom step time temp pe ke etotal press
thermo 10
fix 1 all nvt temp 300 300 50
run 1000
unfix 1
fix 2 all nve
dump d all custom 20 traj.dump id type x y z fx fy fz
dump dcd all dcd 20 traj.dcd
dump xtc all xtc 20 traj.xtc
run 1000
"""
# The same, with a Berendsen thermostat heating the "NVE" part: a real energy ramp.
WATER_HEATED = WATER_NVE.replace("fix 2 all nve", "fix 2 all nve\nfix 3 all temp/berendsen 300 900 20")
ARGON = """
units {units}
atom_style atomic
lattice fcc 5.26
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 39.948
pair_style lj/cut 8.0
pair_coeff 1 1 {epsilon} 3.40
velocity all create 120 4928459 mom yes
fix 1 all nve
timestep {timestep}
thermo 10
thermo_style custom step time temp pe ke etotal
dump d all custom 20 traj.dump id type x y z fx fy fz
run 200
write_data argon.data
"""
ARGON_EPSILON_EV = 0.0104
KCAL_PER_EV = 23.060547830619026


def run_lammps(directory: Path, script: str) -> Path:
    if LMP is None:
        pytest.skip("lmp not found")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "in.lmp").write_text(script)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([LMP, "-in", "in.lmp", "-log", "log.lammps", "-screen", "none"],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (directory / "log.lammps").read_text()[-2000:]
    return directory


def write_water_data(frame, path: Path) -> None:
    """atom_style full data file: each O with its two nearest H as one SPC/E-charged molecule."""
    symbols = np.array(frame.get_chemical_symbols())
    oxygens, hydrogens = np.flatnonzero(symbols == "O"), np.flatnonzero(symbols == "H")
    distances = frame.get_all_distances(mic=True)[np.ix_(oxygens, hydrogens)]
    partners = hydrogens[np.argsort(distances, axis=1)[:, :2]]
    assert len(set(partners.ravel())) == len(hydrogens), "ambiguous O-H assignment"
    molecule = np.zeros(len(frame), dtype=int)
    for m, (o, hs) in enumerate(zip(oxygens, partners), 1):
        molecule[[o, *hs]] = m
    lengths = frame.cell.lengths()
    positions = frame.get_positions() % lengths
    lines = ["water from a DeePMD frame", "", f"{len(frame)} atoms", f"{2 * len(oxygens)} bonds",
             f"{len(oxygens)} angles", "2 atom types", "1 bond types", "1 angle types", "",
             f"0 {lengths[0]} xlo xhi", f"0 {lengths[1]} ylo yhi", f"0 {lengths[2]} zlo zhi", "",
             "Masses", "", "1 15.9994", "2 1.008", "", "Atoms # full", ""]
    for i, (s, x) in enumerate(zip(symbols, positions), 1):
        lines.append(f"{i} {molecule[i - 1]} {1 if s == 'O' else 2} {-0.8476 if s == 'O' else 0.4238} "
                     f"{x[0]:.8f} {x[1]:.8f} {x[2]:.8f}")
    lines += ["", "Bonds", ""]
    lines += [f"{2 * m + k + 1} 1 {o + 1} {hs[k] + 1}" for m, (o, hs) in enumerate(zip(oxygens, partners))
              for k in range(2)]
    lines += ["", "Angles", ""]
    lines += [f"{m} 1 {hs[0] + 1} {o + 1} {hs[1] + 1}" for m, (o, hs) in enumerate(zip(oxygens, partners), 1)]
    path.write_text("\n".join(lines) + "\n")


def water_run(base: Path, name: str, body: str, reference_data: Path) -> Path:
    directory = base / name
    if not (directory / "log.lammps").exists():
        directory.mkdir(parents=True, exist_ok=True)
        frame = read(reference_data / "water_deepmd" / "water.extxyz", index=0)
        write_water_data(frame, directory / "water.data")
        run_lammps(directory, "units real\natom_style full\nboundary p p p\nread_data water.data\n" + body)
    return directory


@pytest.fixture(scope="session")
def water(tmp_path_factory, reference_data) -> Path:
    return water_run(tmp_path_factory.getbasetemp(), "water_nve", WATER_NVE, reference_data)


@pytest.fixture(scope="session")
def heated_water(tmp_path_factory, reference_data) -> Path:
    return water_run(tmp_path_factory.getbasetemp(), "water_heated", WATER_HEATED, reference_data)


@pytest.fixture(scope="session", params=["metal", "real"])
def argon(request, tmp_path_factory) -> Path:
    units = request.param
    epsilon = ARGON_EPSILON_EV if units == "metal" else ARGON_EPSILON_EV * KCAL_PER_EV
    timestep = 0.002 if units == "metal" else 2.0
    return run_lammps(tmp_path_factory.getbasetemp() / f"argon_{units}",
                      ARGON.format(units=units, epsilon=epsilon, timestep=timestep))


# --- faults written into copies of the real dump ----------------------------------------------

def dump_frames(path: Path) -> tuple[list[list[str]], int]:
    lines = path.read_text().splitlines()
    n_atoms = int(lines[3])
    per = n_atoms + 9
    return [lines[i:i + per] for i in range(0, len(lines), per)], n_atoms


def write_dump(frames, path: Path) -> Path:
    path.write_text("\n".join(line for frame in frames for line in frame) + "\n")
    return path


def edit_atom(frame: list[str], atom_id: int, edit) -> None:
    """Apply ``edit(x, y, z) -> (x, y, z)`` (strings or floats) to one atom line of a frame."""
    header = frame[8].split()[2:]
    ix = header.index("x")
    for k in range(9, len(frame)):
        fields = frame[k].split()
        if int(fields[0]) == atom_id:
            xyz = edit(*map(float, fields[ix:ix + 3]))
            fields[ix:ix + 3] = [str(v) for v in xyz]
            frame[k] = " ".join(fields)
            return
    raise AssertionError(f"atom {atom_id} not in frame")


def faulty_dump(water: Path, tmp_path: Path, from_frame: int, edit) -> Path:
    frames, _ = dump_frames(water / "traj.dump")
    for frame in frames[from_frame:]:
        edit(frame)
    return write_dump(frames, tmp_path / "faulty.dump")


def validate_files(water: Path, dump: Path, *options, cli: bool = False) -> tuple[int, dict]:
    """Validate ``dump`` with the water run's data file and log: through the full CLI (report
    files and plots included), or through the same functions without writing the report."""
    if cli:
        report_dir = dump.parent / f"report_{dump.stem}"
        code = main(["validate", str(water / "water.data"), str(dump), "--log",
                     str(water / "log.lammps"), "--report", str(report_dir), *options])
        report = json.loads((report_dir / "report.json").read_text()) if code in (0, 1) else {}
        return code, report
    args = dict(zip(options[::2], options[1::2]))
    config = load_config(args.get("--config"))
    if "--target-temperature" in args:
        config.energy.target_temperature_K = float(args["--target-temperature"])
    run = load_run(water / "water.data", dump, lammps_units="real", timestep_ps=0.0005)
    energy = energy_series_from_lammps_log(water / "log.lammps")
    reference = load_run(*args["--reference"]) if "--reference" in args else None
    report = validate(run, config, energy=energy, reference=reference)
    return (0 if report["passed"] else 1), report


def frame_time(water: Path, frame: int) -> float:
    run = load_run(water / "water.data", water / "traj.dump", timestep_ps=0.0005)
    return float(run.universe.trajectory[frame].time)


# --- the clean run ----------------------------------------------------------------------------

def test_clean_water_run_passes_and_writes_report(water, tmp_path, capsys):
    code, report = validate_files(water, water / "traj.dump", "--target-temperature", "300", cli=True)
    assert code == 0, report.get("failed_checks")
    assert report["passed"] and report["n_frames"] == 51 and report["n_atoms"] == 192
    assert report["stability"]["horizon_time_ps"] is None
    assert report["stability"]["n_reference_bonds"] == 128  # 64 waters, two O-H each
    assert abs(report["energy"]["drift_meV_per_atom_ps"]) < 1.0
    assert abs(report["structure"]["density_g_cm3"]["mean"] - 0.99) < 0.02
    o_o = report["structure"]["rdf"]["O-O"]
    assert 2.6 < o_o["r"][int(np.argmax(o_o["g"]))] < 3.0  # first O-O shell of liquid water
    assert 0.95 < report["structure"]["bonded"]["means"]["bonds:H-O"] < 1.1
    report_dir = water / "report_traj"
    for name in ("report.md", "stability.png", "energy.png", "rdf.png", "bonded.png", "msd.png"):
        assert (report_dir / name).stat().st_size > 0, name
    assert "**PASSED**" in (report_dir / "report.md").read_text()
    assert "PASSED" in capsys.readouterr().out


def test_dump_times_come_from_the_log_timestep(water):
    run = load_run(water / "water.data", water / "traj.dump", timestep_ps=0.0005, lammps_units="real")
    times = [ts.time for ts in run.universe.trajectory[:3]]
    assert np.allclose(times, [0.5, 0.51, 0.52])  # steps 1000, 1020, 1040 at 0.5 fs
    assert list(dict.fromkeys(run.universe.atoms.elements)) == ["O", "H"]  # from the data masses


def test_dcd_and_xtc_of_the_same_run_load_like_the_dump(water):
    dump = load_run(water / "water.data", water / "traj.dump", timestep_ps=0.0005).universe
    dcd = load_run(water / "water.data", water / "traj.dcd", lammps_units="real").universe
    xtc = load_run(water / "water.data", water / "traj.xtc").universe
    for u, tolerance in ((dcd, 1e-4), (xtc, 6e-3)):  # xtc keeps 0.001 nm
        assert u.trajectory.n_frames == 51
        for frame in (0, 37):
            np.testing.assert_allclose(u.trajectory[frame].positions, dump.trajectory[frame].positions,
                                       atol=tolerance)
            assert u.trajectory.ts.time == pytest.approx(dump.trajectory[frame].time, abs=1e-5)
    with pytest.raises(ValidationInputError, match=r"traj.dcd: a LAMMPS DCD stores times"):
        load_run(water / "water.data", water / "traj.dcd")


# --- energy ---------------------------------------------------------------------------------

def test_energy_ramp_fails_drift(heated_water):
    code, report = validate_files(heated_water, heated_water / "traj.dump")
    assert code == 1
    assert "energy.drift" in report["failed_checks"]
    assert report["energy"]["drift_meV_per_atom_ps"] > 1.0  # heated: energy goes up


def test_temperature_against_target(water):
    series = energy_series_from_lammps_log(water / "log.lammps")
    assert energy_summary(series, 300.0)["temperature_deviation_K"] < 25
    code, report = validate_files(water, water / "traj.dump", "--target-temperature", "500")
    assert code == 1 and report["failed_checks"] == ["energy.temperature"]


def test_log_parser_reads_both_runs_units_and_timestep(water):
    log = read_lammps_log(water / "log.lammps")
    assert log.units == "real" and log.timestep == 0.5 and log.n_atoms == 192
    assert len(log.runs) == 2 and len(log.runs[1]["Step"]) == 101
    assert log.runs[1]["Step"][0] == 1000


def test_log_cut_before_the_end_still_parses_and_nan_energy_fails(water, tmp_path):
    lines = (water / "log.lammps").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if line.split()[:1] == ["1500"])
    nan_row = lines[cut].split()
    nan_row[5] = "nan"  # TotEng column
    (tmp_path / "log.lammps").write_text("\n".join(lines[:cut] + [" ".join(nan_row)]) + "\n")
    series = energy_series_from_lammps_log(tmp_path / "log.lammps", n_atoms=192)
    assert len(series.time_ps) == 51
    summary = energy_summary(series)
    assert not summary["finite"] and summary["drift_meV_per_atom_ps"] == float("inf")


def test_log_without_thermo_is_refused(tmp_path):
    bad = tmp_path / "log.lammps"
    bad.write_text("LAMMPS (22 Jul 2025)\nunits real\n")
    with pytest.raises(ValidationInputError, match=r"log.lammps: no thermo table"):
        read_lammps_log(bad)


# --- stability faults -------------------------------------------------------------------------

def test_teleported_atom_sets_the_stability_horizon(water, tmp_path):
    # atom 7 jumps 6 Å in x at frame 30 (wrapped back into the box, so only the jump shows)
    box = 12.444661140441895
    dump = faulty_dump(water, tmp_path, 30,
                       lambda f: edit_atom(f, 7, lambda x, y, z: ((x + 6.0) % box, y, z)))
    code, report = validate_files(water, dump)
    assert code == 1
    assert "stability.jump_frames" in report["failed_checks"]
    assert report["stability"]["horizon_frame"] == 30
    assert report["stability"]["horizon_time_ps"] == pytest.approx(frame_time(water, 30))
    assert "jumped" in report["stability"]["first_failure"]


def test_atom_leaving_the_box_is_caught(water, tmp_path):
    dump = faulty_dump(water, tmp_path, 40, lambda f: edit_atom(f, 7, lambda x, y, z: (x + 40.0, y, z)))
    code, report = validate_files(water, dump)
    assert code == 1 and "stability.outside_box_frames" in report["failed_checks"]
    assert report["stability"]["horizon_frame"] == 40


def atom_xyz(frame: list[str], atom_id: int) -> np.ndarray:
    header = frame[8].split()[2:]
    ix = header.index("x")
    line = next(line for line in frame[9:] if int(line.split()[0]) == atom_id)
    return np.array(line.split()[ix:ix + 3], dtype=float)


def test_broken_bond_is_caught(water, tmp_path):
    run = load_run(water / "water.data", water / "traj.dump", timestep_ps=0.0005)
    hydrogen = run.universe.select_atoms("element H")[0]
    oxygen = hydrogen.bonded_atoms[0]
    box = 12.444661140441895
    # from frame 20 on, pull one H away from its O along the bond: 0.75 Å, then 0.1 Å more per
    # frame (small steps: not a jump)
    frames, _ = dump_frames(water / "traj.dump")
    for k, frame in enumerate(frames[20:]):
        bond = atom_xyz(frame, hydrogen.id) - atom_xyz(frame, oxygen.id)
        bond -= box * np.round(bond / box)
        pull = min(1.2, 0.75 + 0.1 * k) * bond / np.linalg.norm(bond)
        edit_atom(frame, hydrogen.id, lambda x, y, z, d=pull: (x + d[0], y + d[1], z + d[2]))
    dump = write_dump(frames, tmp_path / "broken.dump")
    code, report = validate_files(water, dump)
    assert code == 1
    assert "stability.broken_bond_frames" in report["failed_checks"]
    assert "stability.jump_frames" not in report["failed_checks"]
    assert report["stability"]["horizon_frame"] == 20
    worst = report["stability"]["first_failure"].split("worst: atoms ")[1].split()[0]
    assert sorted(map(int, worst.split("-"))) == sorted([hydrogen.index, oxygen.index])


def test_nan_frame_is_caught(water, tmp_path):
    frames, _ = dump_frames(water / "traj.dump")
    edit_atom(frames[12], 3, lambda x, y, z: ("nan", y, z))
    dump = write_dump(frames, tmp_path / "nan.dump")
    code, report = validate_files(water, dump)
    assert code == 1 and "stability.nonfinite_frames" in report["failed_checks"]
    assert report["stability"]["horizon_frame"] == 12
    assert "NaN" in report["stability"]["first_failure"]


def test_truncated_dump_is_refused_naming_the_file(water, tmp_path, capsys):
    lines = (water / "traj.dump").read_text().splitlines()
    cut = tmp_path / "cut.dump"
    cut.write_text("\n".join(lines[: 201 * 10 + 120]) + "\n")  # 10 frames and a half
    with pytest.raises(ValidationInputError, match=r"cut.dump: truncated LAMMPS dump: frame 11"):
        load_run(water / "water.data", cut)
    code = main(["validate", str(water / "water.data"), str(cut), "--report", str(tmp_path / "r")])
    assert code == 2 and "cut.dump" in capsys.readouterr().err


def test_truncated_data_file_is_refused_naming_the_file(water, tmp_path):
    text = (water / "water.data").read_text()
    (tmp_path / "cut.data").write_text(text[: len(text) // 3])
    with pytest.raises(ValidationInputError, match=r"cut.data"):
        load_run(tmp_path / "cut.data", water / "traj.dump")


def test_dump_as_topology_needs_elements(water, capsys, tmp_path):
    with pytest.raises(ValidationInputError, match=r"pass --elements"):
        load_run(water / "traj.dump", water / "traj.dump")
    run = load_run(water / "traj.dump", water / "traj.dump", elements=["O", "H"])
    assert (run.universe.atoms.elements == "O").sum() == 64
    with pytest.raises(ValidationInputError, match=r"3 symbols but the file has 2 atom types"):
        load_run(water / "traj.dump", water / "traj.dump", elements=["O", "H", "C"])


def test_parallel_backend_matches_serial_across_part_boundary(water, tmp_path):
    # 51 frames split in two parts of 26 and 25: a jump at frame 26 is seen only across parts
    box = 12.444661140441895
    dump = faulty_dump(water, tmp_path, 26,
                       lambda f: edit_atom(f, 7, lambda x, y, z: ((x + 6.0) % box, y, z)))
    u = load_run(water / "water.data", dump, timestep_ps=0.0005).universe
    serial = StabilityAnalysis(u.atoms).run()
    parallel = StabilityAnalysis(u.atoms).run(backend="multiprocessing", n_workers=2)
    assert serial.results.horizon_frame == parallel.results.horizon_frame == 26
    for key in ("min_distance", "max_jump", "n_jumps", "n_broken_bonds", "failed"):
        np.testing.assert_allclose(serial.results[key], parallel.results[key], equal_nan=True)
    bonded_s = BondedDistributions(u.atoms).run()
    bonded_p = BondedDistributions(u.atoms).run(backend="multiprocessing", n_workers=2)
    np.testing.assert_allclose(bonded_s.results.bonds["H-O"]["p"], bonded_p.results.bonds["H-O"]["p"])


# --- comparison -------------------------------------------------------------------------------

def test_comparison_with_itself_passes_and_with_heated_run_fails(water, heated_water, tmp_path):
    config = tmp_path / "checks.yaml"
    config.write_text("comparison:\n  max_rdf_mae: 0.05\n  max_js_distance: 0.1\n"
                      "energy:\n  max_drift_meV_per_atom_ps: null\n"
                      "structure:\n  diffusion: false\n")
    reference = (water / "water.data", water / "traj.dump")
    code, report = validate_files(water, water / "traj.dump", "--config", str(config),
                                  "--reference", reference)
    assert code == 0
    assert all(v == 0 for v in report["comparison"]["rdf_mae"].values())
    code, report = validate_files(heated_water, heated_water / "traj.dump", "--config", str(config),
                                  "--reference", reference)
    assert code == 1
    assert any(name.startswith("compare.") for name in report["failed_checks"])


# --- force parity -----------------------------------------------------------------------------

def test_force_parity_with_the_same_potential_passes_wrong_one_fails(argon):
    units = argon.name.split("_")[1]
    run = load_run(argon / "argon.data", argon / "traj.dump", lammps_units=units)
    assert set(run.universe.atoms.elements) == {"Ar"}
    config = ValidationConfig().parity
    same = LennardJones(sigma=3.40, epsilon=ARGON_EPSILON_EV, rc=8.0)
    summary, checks = check_parity(run, same, config)
    assert all(c.passed is not False for c in checks), summary
    assert summary["relative_rmse"] < 2e-3  # dumps print positions with 6 digits
    wrong = LennardJones(sigma=3.40, epsilon=1.1 * ARGON_EPSILON_EV, rc=8.0)
    summary, checks = check_parity(run, wrong, config)
    assert [c.name for c in checks if c.passed is False] == ["parity.relative_force_rmse"]
    assert summary["relative_rmse"] == pytest.approx(0.1, rel=0.05)


def test_force_parity_needs_units_for_lammps_dumps(argon):
    run = load_run(argon / "argon.data", argon / "traj.dump")
    with pytest.raises(ValidationInputError, match=r"--units metal\|real"):
        check_parity(run, LennardJones(sigma=3.4, epsilon=ARGON_EPSILON_EV, rc=8.0),
                     ValidationConfig().parity)


def test_validate_api_with_calculator_reports_parity(argon):
    units = argon.name.split("_")[1]
    run = load_run(argon / "argon.data", argon / "traj.dump", lammps_units=units)
    report = validate(run, calculator=LennardJones(sigma=3.40, epsilon=ARGON_EPSILON_EV, rc=8.0))
    assert report["passed"], report["failed_checks"]
    assert report["parity"]["frames"] == [0, 2, 5, 8, 10]


# --- the ffkit pair style (LAMMPS plugin) against the ASE calculator on the same artifact ------

PLUGIN = Path(__file__).resolve().parents[1] / "lammps_plugin" / "ffkit_lammps" / "ffkitplugin.so"
FFKIT_WATER = """
units metal
atom_style atomic
boundary p p p
read_data water.data
pair_style ffkit
pair_coeff * * model.pt O H
velocity all create 300 1 mom yes
timestep 0.00025
fix 1 all nve
thermo 5
thermo_style custom step time temp pe ke etotal
dump d all custom 10 traj.dump id type x y z fx fy fz
dump_modify d format float %.12g
run 40
"""


@pytest.fixture(scope="session")
def ffkit_water(tmp_path_factory, reference_data) -> Path:
    """40 steps of water with an (untrained) 'mm' tier artifact in `pair_style ffkit`, plus a
    different artifact ('fast' tier) that must fail parity."""
    if not PLUGIN.is_file():
        pytest.skip(f"{PLUGIN} not built")
    import torch
    from ffkit.artifact import compile_model
    from ffkit.model.tiers import build_model

    directory = tmp_path_factory.getbasetemp() / "ffkit_water"
    directory.mkdir()
    for tier, name, seed in (("mm", "model.pt", 0), ("fast", "other.pt", 1)):
        torch.manual_seed(seed)
        compile_model(build_model(tier, [1, 8]), directory / name, dtype="float64")
    frame = read(reference_data / "water_deepmd" / "water.extxyz", index=0)
    frame.write(directory / "water.data", format="lammps-data", specorder=["O", "H"], units="metal",
                masses=True)
    return run_lammps(directory, FFKIT_WATER)


def test_ffkit_pair_style_forces_match_the_calculator(ffkit_water, tmp_path, capsys):
    checks = tmp_path / "checks.yaml"
    # MDAnalysis holds positions in float32 (~1e-6 relative): that, not the dump, sets the floor
    checks.write_text("parity:\n  max_abs_error_eV_A: 1.0e-3\n  max_relative_rmse: 1.0e-4\n")
    args = ["validate", str(ffkit_water / "water.data"), str(ffkit_water / "traj.dump"), "--log",
            str(ffkit_water / "log.lammps"), "--config", str(checks), "--report"]
    assert main(args + [str(tmp_path / "same"), "--model", str(ffkit_water / "model.pt")]) == 0
    report = json.loads((tmp_path / "same" / "report.json").read_text())
    assert report["parity"]["frames"] == [0, 1, 2, 3, 4]
    assert report["parity"]["relative_rmse"] < 1e-4
    assert "Force parity" in (tmp_path / "same" / "report.md").read_text()
    from ffkit.calculator import FFKitCalculator

    run = load_run(ffkit_water / "water.data", ffkit_water / "traj.dump", lammps_units="metal")
    _, checks = check_parity(run, FFKitCalculator(ffkit_water / "other.pt"), load_config(checks).parity)
    assert {c.name for c in checks if c.passed is False} == {
        "parity.max_abs_force_error", "parity.relative_force_rmse"}


def test_force_parity_on_a_dump_without_forces_is_bad_input(ffkit_water, tmp_path, capsys):
    lines = []
    for line in (ffkit_water / "traj.dump").read_text().splitlines():
        if line.startswith("ITEM: ATOMS"):
            line = "ITEM: ATOMS id type x y z"
        elif len(line.split()) == 8:
            line = " ".join(line.split()[:5])
        lines.append(line)
    (tmp_path / "noforces.dump").write_text("\n".join(lines) + "\n")
    args = ["validate", str(ffkit_water / "water.data"), str(tmp_path / "noforces.dump"), "--log",
            str(ffkit_water / "log.lammps"), "--report", str(tmp_path / "report"), "--model",
            str(ffkit_water / "model.pt")]
    assert main(args) == 2  # bad input, not "checks failed" (1)
    err = capsys.readouterr().err
    assert "noforces.dump" in err and "has no forces" in err and "fx fy fz" in err


def test_dump_cut_inside_its_last_line_is_refused(water, tmp_path):
    text = (water / "traj.dump").read_text()
    (tmp_path / "cut.dump").write_text(text[:-12])
    with pytest.raises(ValidationInputError, match=r"cut.dump: the last line has"):
        load_run(water / "water.data", tmp_path / "cut.dump")
