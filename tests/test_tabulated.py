"""The compile-time spline of the pairwise terms reproduces the analytic model it replaces."""

import numpy as np
import pytest
import torch
from ase.io import read
from model_helpers import energy_forces, perturbed_model

from ffkit.artifact import compile_model, read_metadata
from ffkit.calculator import FFKitCalculator
from ffkit.model.tabulated import tabulate_pair_terms


@pytest.mark.parametrize("tier", ["mm", "fast"])
@pytest.mark.parametrize("data,index,species", [("water_deepmd/water.extxyz", 5, [1, 8]),
                                                 ("rmd17_ethanol/train.xyz", 7, [1, 6, 8])])
def test_table_matches_analytic_terms(reference_data, tier, data, index, species):
    atoms = read(reference_data / data, index=index)
    model = perturbed_model(tier, species, avg_neighbors=10.0, scale=0.1)
    tabulated = tabulate_pair_terms(model)
    assert tabulated["tabulated"]["terms"] == [n for n in model.term_names if n != "three_body"]
    e_exact, f_exact = energy_forces(model, atoms)
    e_table, f_table = energy_forces(tabulated["model"], atoms)
    assert e_table == pytest.approx(e_exact, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(f_table, f_exact, rtol=0, atol=1e-6 * max(1.0, np.abs(f_exact).max()))


def test_table_holds_at_close_contact_and_is_finite_below_its_first_knot():
    model = perturbed_model("mm", [1, 8], avg_neighbors=10.0, scale=0.1)
    table = tabulate_pair_terms(model)["model"]
    for r, tol in [(0.5, 1e-6), (0.9, 1e-8), (1.7, 1e-8), (5.9, 1e-8)]:
        vec = torch.tensor([[r, 0.0, 0.0], [-r, 0.0, 0.0]], dtype=torch.float64)
        species, edges = torch.tensor([1, 0]), torch.tensor([[0, 1], [1, 0]])
        exact = model(species, edges, vec, 2).sum()
        assert float(table(species, edges, vec, 2).sum()) == pytest.approx(float(exact), rel=tol)

    def force_on_pair(r):
        vec = torch.tensor([[r, 0.0, 0.0], [-r, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
        energy = table(torch.tensor([1, 0]), torch.tensor([[0, 1], [1, 0]]), vec, 2).sum()
        (grad,) = torch.autograd.grad(energy, vec)
        assert torch.isfinite(energy) and torch.isfinite(grad).all()
        return -float(grad[0, 0])  # along r: positive pushes the atoms apart
    # below the first knot (0.2 Å) the repulsion keeps growing as 1/r^2 instead of staying constant
    assert 0 < force_on_pair(0.19) < force_on_pair(0.1) < force_on_pair(0.05)
    assert force_on_pair(0.05) == pytest.approx(force_on_pair(0.1) * 4, rel=1e-9)


def test_artifact_records_the_table_and_its_error(tmp_path, reference_data):
    model = perturbed_model("fast", [1, 8], avg_neighbors=10.0, scale=0.1)
    path = tmp_path / "model.pt"
    compile_model(model, path)
    info = read_metadata(path)["pair_table"]
    assert info["terms"] == ["repulsion", "pair"] and info["spacing_A"] > 0
    assert 0 <= info["max_energy_error_eV"] < 1e-4 and 0 <= info["max_force_error_eV_A"] < 1e-3
    atoms = read(reference_data / "water_deepmd" / "water.extxyz", index=2)
    atoms.calc = FFKitCalculator(path)
    e_exact, f_exact = energy_forces(model, atoms)
    assert atoms.get_potential_energy() == pytest.approx(e_exact, rel=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), f_exact, atol=1e-6)
