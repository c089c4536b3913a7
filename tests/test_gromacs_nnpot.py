"""The NNPot calling convention, checked without GROMACS: exactly what GROMACS passes and expects.

GROMACS (see docs/design.md §5 and the 2026 source) calls the module with float32 nm positions that
require grad, int32 atomic numbers, a float32 (3,3) box whose rows are box vectors, a bool (3)
pbc — or, for 2026's pair layout, int32 (P,2) pairs and float32 (P,3) nm shifts, each pair once
with distance x[a] - x[b] + shift — and reads back (energy kJ/mol, forces kJ/mol/nm), or the
energy alone and then backpropagates to input 1.
"""

import numpy as np
import pytest
import torch
from ase.io import read

from ffkit.artifact import compile_model
from ffkit.calculator import FFKitCalculator
from ffkit.errors import FFKitError
from ffkit.model.tiers import build_model
from ffkit.neighbors import neighbor_pairs
from ffkit.units import KJ_PER_MOL_PER_EV
from ffkit_gromacs.nnpot import compile_nnpot, compile_nnpot_from_artifact
from ffkit.solvation import order_waters

FORCE_KJ_MOL_NM = KJ_PER_MOL_PER_EV * 10.0  # eV/Å -> kJ/mol/nm


def _model(species, seed=0):
    torch.manual_seed(seed)
    model = build_model("fast", species, [-13.7, -432.1, -1035.4][: len(species)], avg_neighbors=20.0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def model():
    return _model([1, 8])


@pytest.fixture(scope="module")
def artifacts(model, tmp_path_factory):
    """NNPot artifacts of one model in every layout, plus its float64 LAMMPS artifact for ASE."""
    root = tmp_path_factory.mktemp("nnpot")
    out = {}
    for layout in ("positions", "pairs"):
        for forces in (True, False):
            path = root / f"{layout}_{'forces' if forces else 'energy'}.pt"
            compile_nnpot(model, path, layout=layout, return_forces=forces)
            out[layout, forces] = torch.jit.load(str(path))
    out["float64"] = root / "positions_float64.pt"
    compile_nnpot(model, out["float64"], layout="positions", precision="float64")
    out["ase"] = root / "lammps.pt"
    compile_model(model, out["ase"], dtype="float64")
    return out


@pytest.fixture(scope="module")
def waters(reference_data):
    return read(reference_data / "water_deepmd" / "water.extxyz", index="0:400:80")


def _gromacs_inputs(atoms, positions_angstrom=None):
    """The four 2025 inputs exactly as GROMACS builds them."""
    x = atoms.positions if positions_angstrom is None else positions_angstrom
    positions = torch.tensor(x / 10.0, dtype=torch.float32).requires_grad_(True)
    numbers = torch.tensor(atoms.numbers, dtype=torch.int32)
    box = torch.tensor(np.asarray(atoms.cell) / 10.0, dtype=torch.float32)
    return positions, numbers, box, torch.tensor([True, True, True])


def _gromacs_pairs(atoms, cutoff_nm):
    """GROMACS's pair-list inputs: each pair once, distance x[a] - x[b] + shift (nm)."""
    positions_nm = np.asarray(atoms.positions / 10.0, dtype=np.float32).astype(np.float64)
    cell_nm = np.asarray(atoms.cell) / 10.0
    i, j, s = neighbor_pairs(positions_nm, cell_nm, atoms.pbc, cutoff_nm)
    first_nonzero = np.take_along_axis(s, np.argmax(s != 0, axis=1)[:, None], axis=1)[:, 0]
    once = (i < j) | ((i == j) & (first_nonzero > 0))
    a, b, shift = i[once], j[once], -(s[once] @ cell_nm)       # x[a] - x[b] + shift = -(x_j - x_i + S@cell)
    pairs = torch.tensor(np.stack([a, b], axis=1), dtype=torch.int32)
    return pairs, torch.tensor(shift, dtype=torch.float32)


def _reference(artifacts, atoms):
    """Energy (kJ/mol) and forces (kJ/mol/nm) from the ASE calculator on the float32-rounded frame."""
    frame = atoms.copy()
    frame.positions = np.asarray(atoms.positions / 10.0, dtype=np.float32).astype(np.float64) * 10.0
    frame.cell = np.asarray(np.asarray(atoms.cell) / 10.0, dtype=np.float32).astype(np.float64) * 10.0
    frame.calc = FFKitCalculator(artifacts["ase"])
    return frame.get_potential_energy() * KJ_PER_MOL_PER_EV, frame.get_forces() * FORCE_KJ_MOL_NM


def _assert_close(energy, forces, ref_energy, ref_forces, rel=1e-5):
    assert float(energy) == pytest.approx(ref_energy, rel=rel)
    scale = np.abs(ref_forces).max()
    assert scale > 1.0, "the test model must give non-trivial forces"
    np.testing.assert_allclose(np.asarray(forces, dtype=np.float64), ref_forces, atol=rel * scale * 10, rtol=0)


def test_metadata_and_signature_name_the_gromacs_inputs(artifacts, model, tmp_path):
    from ffkit.artifact import read_metadata

    meta = compile_nnpot(model, tmp_path / "m.pt", layout="pairs")
    assert read_metadata(tmp_path / "m.pt") == meta
    assert meta["engine"] == "gromacs" and meta["dtype"] == "float32" and meta["layout"] == "pairs"
    assert meta["mdp_inputs"] == ["atom-positions", "atom-numbers", "atom-pairs", "pair-shifts"]
    # the artifact takes nm and returns kJ/mol: its units say so; the model inside works in eV and Å
    assert meta["species"] == [1, 8] and meta["units"] == {"energy": "kJ/mol", "length": "nm", "force": "kJ/mol/nm"}
    assert meta["model_units"] == {"energy": "eV", "length": "angstrom", "force": "eV/angstrom"}
    assert meta["cutoff"] == pytest.approx(model.cutoff / 10.0)
    assert meta["model_cutoff_A"] == pytest.approx(model.cutoff)
    module = artifacts["positions", True]
    assert module.mdp_inputs == ["atom-positions", "atom-numbers", "box", "pbc"]
    assert module.species == [1, 8] and module.cutoff == pytest.approx(model.cutoff / 10.0)
    assert (module.energy_unit, module.length_unit) == ("kJ/mol", "nm")
    args = [a.name for a in module.forward.schema.arguments][1:]
    assert len(args) == 4


def test_refuses_files_gromacs_will_not_load_and_unknown_layouts(model, tmp_path):
    with pytest.raises(FFKitError, match=r"ending in \.pt"):
        compile_nnpot(model, tmp_path / "model.pth")
    with pytest.raises(FFKitError, match="unknown NNPot input layout 'edges'"):
        compile_nnpot(model, tmp_path / "model.pt", layout="edges")


@pytest.mark.parametrize("layout", ["positions", "pairs"])
@pytest.mark.parametrize("forces", [True, False])
def test_gromacs_dummy_checks_pass(artifacts, layout, forces):
    """grompp 2025: one atom at 0, Z=1, identity box; grompp 2026: two atoms at 0 and pair (0, 1)."""
    module = artifacts[layout, forces]
    for n in (1, 2):
        if layout == "pairs" and n == 1:
            continue
        positions = torch.zeros(n, 3, dtype=torch.float32, requires_grad=True)
        numbers = torch.ones(n, dtype=torch.int32)
        extra = ((torch.eye(3), torch.tensor([True, True, True])) if layout == "positions"
                 else (torch.tensor([[0, 1]], dtype=torch.int32), torch.zeros(1, 3)))
        out = module(positions, numbers, *extra)
        if forces:
            energy, f = out
            assert f.shape == (n, 3) and torch.isfinite(f).all()
        else:
            energy = out
            energy.backward()  # GROMACS backpropagates to input 1
            assert torch.isfinite(positions.grad).all()
        assert energy.numel() == 1 and torch.isfinite(energy).all()


def test_grompp_check_passes_for_a_model_without_hydrogen(tmp_path):
    path = tmp_path / "oxygen.pt"
    compile_nnpot(_model([8]), path)
    energy, forces = torch.jit.load(str(path))(torch.zeros(1, 3), torch.tensor([1], dtype=torch.int32),
                                                torch.eye(3), torch.tensor([True, True, True]))
    assert float(energy) == 0.0 and forces.shape == (1, 3)


def test_water_frames_match_the_ase_calculator(artifacts, waters):
    module = artifacts["positions", True]
    for atoms in waters:
        energy, forces = module(*_gromacs_inputs(atoms))
        assert energy.dtype == torch.float64 and forces.dtype == torch.float32 and forces.shape == (len(atoms), 3)
        _assert_close(energy, forces, *_reference(artifacts, atoms))


def test_float64_precision_matches_tighter(artifacts, waters):
    module = torch.jit.load(str(artifacts["float64"]))
    atoms = waters[1]
    energy, forces = module(*_gromacs_inputs(atoms))
    _assert_close(energy, forces, *_reference(artifacts, atoms), rel=1e-7)


def test_a_lammps_artifact_wraps_into_the_same_nnpot_model(artifacts, waters, model, tmp_path):
    """No checkpoint needed: the LAMMPS artifact's `model` submodule is the trained model."""
    from ffkit.artifact import read_metadata

    path = tmp_path / "from_artifact.pt"
    meta = compile_nnpot_from_artifact(artifacts["ase"], path, precision="float64")
    source = read_metadata(artifacts["ase"])
    assert meta["engine"] == "gromacs" and meta["dtype"] == "float32" and meta["compute_dtype"] == "float64"
    assert meta["source_artifact"] == str(artifacts["ase"].resolve()) and meta["n_params"] == source["n_params"]
    assert read_metadata(path) == meta
    energy, forces = torch.jit.load(str(path))(*_gromacs_inputs(waters[2]))
    _assert_close(energy, forces, *_reference(artifacts, waters[2]), rel=1e-7)
    with pytest.raises(FFKitError, match="compiled for engine 'gromacs', but 'lammps' is needed"):
        compile_nnpot_from_artifact(path, tmp_path / "again.pt")


def test_a_model_with_heads_runs_as_the_mean_of_its_heads(waters, tmp_path):
    """GROMACS takes one model: one with `heads: 3` runs as the mean of its heads, the energy and forces of
    the committee of its heads (`ffkit compile` for LAMMPS; here through the ASE calculator)."""
    from ffkit.committee import compile_committee

    torch.manual_seed(4)
    model = build_model("fast", [1, 8], [-13.7, -1035.4], terms={"three_body": {"heads": 3}},
                        avg_neighbors=20.0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    compile_nnpot(model, tmp_path / "heads_gromacs.pt", layout="positions", precision="float64")
    compile_committee([model], tmp_path / "heads_lammps.pt")
    energy, forces = torch.jit.load(str(tmp_path / "heads_gromacs.pt"))(*_gromacs_inputs(waters[1]))
    _assert_close(energy, forces, *_reference({"ase": tmp_path / "heads_lammps.pt"}, waters[1]), rel=1e-7)


def test_pair_layout_matches_with_gromacs_pair_list(artifacts, waters, model):
    module = artifacts["pairs", True]
    for atoms in waters[:2]:
        positions, numbers, _, _ = _gromacs_inputs(atoms)
        pairs, shifts = _gromacs_pairs(atoms, model.cutoff / 10.0 + 0.1)
        energy, forces = module(positions, numbers, pairs, shifts)
        _assert_close(energy, forces, *_reference(artifacts, atoms))


@pytest.mark.parametrize("layout", ["positions", "pairs"])
def test_energy_only_artifacts_give_the_same_forces_by_backprop(artifacts, waters, model, layout):
    atoms = waters[0]
    positions, numbers, box, pbc = _gromacs_inputs(atoms)
    extra = (box, pbc) if layout == "positions" else _gromacs_pairs(atoms, model.cutoff / 10.0 + 0.1)
    energy = artifacts[layout, False](positions, numbers, *extra)
    energy.backward()
    _assert_close(energy.detach(), -positions.grad, *_reference(artifacts, atoms))


def test_split_molecules_give_the_same_result_as_whole_ones(artifacts, waters):
    """GROMACS wraps atoms into the box one by one: a water can arrive split across the box."""
    module = artifacts["positions", True]
    atoms = order_waters(waters[2])                      # O, H, H per molecule, each molecule whole
    cell = np.asarray(atoms.cell)
    rng = np.random.default_rng(1)
    wrapped = atoms.positions - np.floor(atoms.get_scaled_positions(wrap=False)) @ cell
    scattered = atoms.positions + rng.integers(-2, 3, size=(len(atoms), 3)) @ cell
    e_ref, f_ref = module(*_gromacs_inputs(atoms))
    for x in (wrapped, scattered):
        energy, forces = module(*_gromacs_inputs(atoms, x))
        assert float(energy) == pytest.approx(float(e_ref), rel=1e-6)
        np.testing.assert_allclose(forces.numpy(), f_ref.numpy(), atol=1e-3 * float(f_ref.abs().max()))
    o_to_h = np.abs(wrapped[1::3] - wrapped[0::3]).max(1), np.abs(wrapped[2::3] - wrapped[0::3]).max(1)
    assert (np.maximum(*o_to_h) > cell[0, 0] / 2).sum() > 0, "the frame must contain waters split across the box"


def test_small_box_needs_images_beyond_the_minimum_image(artifacts, model):
    """A box narrower than twice the cutoff: the module searches further images itself."""
    from ase import Atoms

    module = artifacts["positions", True]
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=[6.0, 6.5, 7.0], pbc=True)
    assert model.cutoff > 3.0
    _assert_close(*module(*_gromacs_inputs(atoms)), *_reference(artifacts, atoms))


def test_forces_are_minus_the_energy_gradient_in_gromacs_units(artifacts, waters):
    module = torch.jit.load(str(artifacts["float64"]))
    atoms = waters[0]
    positions, numbers, box, pbc = _gromacs_inputs(atoms)
    _, forces = module(positions, numbers, box, pbc)
    x0 = positions.detach()
    for atom, dim in [(0, 0), (1, 2), (50, 1)]:
        step = torch.zeros_like(x0)
        step[atom, dim] = 2e-4
        plus, minus = x0 + step, x0 - step
        e_plus = float(module(plus, numbers, box, pbc)[0])
        e_minus = float(module(minus, numbers, box, pbc)[0])
        h = float(plus[atom, dim].double() - minus[atom, dim].double())
        assert -(e_plus - e_minus) / h == pytest.approx(float(forces[atom, dim]), rel=2e-3, abs=0.5)


def test_unknown_element_is_named(artifacts, waters):
    atoms = waters[0].copy()
    atoms.numbers[[0, 3]] = [11, 17]
    with pytest.raises(Exception, match=r"element\(s\) Na \(Z=11\), Cl \(Z=17\) in the NN input group are not "
                                        r"in this model, which knows H \(Z=1\), O \(Z=8\)"):
        artifacts["positions", True](*_gromacs_inputs(atoms))


def test_wrong_input_order_is_explained(artifacts, waters, model):
    atoms = waters[0]
    positions, numbers, box, pbc = _gromacs_inputs(atoms)
    with pytest.raises(Exception, match=r"nnpot-model-input2 must be atom-numbers \(int32, shape \[N\]\).*"
                                        r"expects nnpot-model-input1..4 = atom-positions atom-numbers box pbc"):
        artifacts["positions", True](positions, box, numbers, pbc)
    pairs, shifts = _gromacs_pairs(atoms, 0.6)
    with pytest.raises(Exception, match=r"nnpot-model-input3 must be box"):
        artifacts["positions", True](positions, numbers, pairs, shifts)
    with pytest.raises(Exception, match=r"nnpot-model-input3 must be atom-pairs"):
        artifacts["pairs", True](positions, numbers, box, pbc)
    with pytest.raises(Exception, match=r"nnpot-model-input1 must be atom-positions \(float32"):
        artifacts["positions", True](positions.double(), numbers, box, pbc)


@pytest.mark.parametrize("case", ["cubic", "scattered", "triclinic", "slab_xy", "no_pbc", "narrow_box", "few_atoms"])
def test_pair_search_finds_the_same_pairs_as_the_reference_list(artifacts, waters, model, case):
    """The module's own pair search (cell list; all pairs and images for narrow boxes or few atoms)
    against vesin."""
    atoms = waters[0].copy()
    pbc = [True, True, True]
    if case == "scattered":
        atoms.positions += np.random.default_rng(3).integers(-2, 3, (len(atoms), 3)) @ np.asarray(atoms.cell)
    elif case == "triclinic":
        atoms.set_cell([[12.4447, 0, 0], [3.0, 12.4447, 0], [-2.0, 1.5, 12.4447]], scale_atoms=True)
    elif case == "slab_xy":
        pbc = [True, True, False]
    elif case == "no_pbc":
        pbc = [False, False, False]
    elif case == "narrow_box":
        atoms = atoms[:3]
        atoms.set_cell([3.0, 6.5, 7.0])
    elif case == "few_atoms":         # a solute, partly outside the box
        atoms = atoms[:45]
        atoms.positions += np.random.default_rng(4).integers(-1, 2, (len(atoms), 3)) @ np.asarray(atoms.cell)
    module = artifacts["positions", True]
    assert (len(atoms) > module.all_pairs_atoms) == (case not in ("narrow_box", "few_atoms"))  # both searches run
    positions, _, box, _ = _gromacs_inputs(atoms)
    edge_index, shifts = module._pairs_in_box(positions, box, torch.tensor(pbc))
    x = positions.detach().double().numpy() * 10.0
    cell = box.double().numpy() * 10.0
    i, j, s = neighbor_pairs(x, cell, np.array(pbc), model.cutoff)
    mine = sorted(zip(edge_index[0].tolist(), edge_index[1].tolist(), np.round(shifts.double().numpy(), 3).tolist()))
    reference = sorted(zip(i.tolist(), j.tolist(), np.round(s @ cell, 3).tolist()))
    assert len(reference) > 0 and mine == reference
