"""A compiled model's parameters, exactly, for the LAMMPS plugin's hand-written kernel.

The kernel (lammps_plugin/ffkit_kernel.cpp) evaluates the spline pair table, the 3-body moment
term and the many-body term (3-body plus 4-body invariants) with forces from a hand-written adjoint
pass, in double, with no autograd and no TorchScript in the MD step (issue #18: autograd's backward
costs 2-3x the forward). It runs models made of those term types (`mm`, `fast`, `balanced`,
`accurate`) and the equivariant tensor-message term, whose messages reach the ghost centres
of a two-layer model (issue #17); others (the invariant message-passing term) carry TorchScript alone.
Arrays are stored exactly, as little-endian base64 of the tensor's own precision (float32 tensors
in 4 bytes a number, which the kernel widens to double without rounding): about a quarter of the
size of the decimal text of version 1.
Works on a Python model and on a loaded TorchScript artifact alike (terms are told by class name),
so an artifact compiled before kernels existed gains one when `ffkit compile` recasts it. A committee's
kernel lists its members' kernels (`"committee": [spec, ...]`): the plugin runs each and averages.
"""

import base64
from typing import Any, Dict, List, Optional

import torch

from torch import nn

from .moments import monomials

KERNEL_FORMAT = "ffkit-kernel"
KERNEL_VERSION = 2  # 1: arrays as JSON lists of decimals (still read by the plugin); 2: base64
KERNEL_FILE = "kernel.json"


def _numbers(t: torch.Tensor) -> Dict[str, str]:
    """A tensor's values, flattened row-major, exactly: {"dtype": "float32" | "float64", "base64": ...}."""
    single = t.dtype == torch.float32
    values = t.detach().flatten().to(torch.float32 if single else torch.float64).numpy()
    return {"dtype": "float32" if single else "float64",
            "base64": base64.b64encode(values.astype("<f4" if single else "<f8").tobytes()).decode()}


def _kind(module: nn.Module) -> str:
    """The class name of a Python module or of the module a TorchScript one was scripted from."""
    return getattr(module, "original_name", type(module).__name__)


def _readout(readout: nn.Module) -> Dict[str, Any]:
    networks = []
    for net in readout.networks.children():
        linears = [m for m in net.children() if _kind(m) == "Linear"]
        networks.append([{"n_in": m.in_features, "n_out": m.out_features, "weight": _numbers(m.weight),
                          "bias": _numbers(m.bias)} for m in linears])
    # a shared network is told the element by a one-hot input appended to the features
    shared = networks[0][0]["n_in"] != readout.feature_mean.numel()
    return {"shared": shared, "activation": "silu", "feature_mean": _numbers(readout.feature_mean),
            "feature_std": _numbers(readout.feature_std), "output_scale": float(readout.output_scale),
            "networks": networks}


def _pair_table(term: nn.Module) -> Dict[str, Any]:
    return {"type": "pair_table", "cutoff": term.cutoff, "r_first": term.r_first, "spacing": term.spacing,
            "n_knots": term.n_knots, "coefficients": _numbers(term.coefficients)}


def _three_body(term: nn.Module) -> Dict[str, Any]:
    m = term.moments
    exps, weights, _ = monomials(m.l_max)
    return {"type": "three_body", "cutoff": term.cutoff, "n_basis": int(m.basis.frequencies.numel()),
            "n_channels": m.n_channels, "l_max": m.l_max, "n_groups": int(getattr(m, "n_groups", 1)),
            "inv_neighbors": m.inv_neighbors,
            "bessel_prefactor": m.basis.prefactor, "bessel_frequencies": _numbers(m.basis.frequencies),
            "envelope_p": m.basis.envelope.p, "radial_weights": _numbers(m.radial_weights),
            "monomial_exponents": exps.tolist(), "monomial_weights": _numbers(weights),
            "readout": _readout(term.readout)}


def _many_body(term: nn.Module) -> Dict[str, Any]:
    """The 3-body part as `_three_body`, plus the channel mixes of the rank-1 vectors and rank-2 matrices
    the 4-body invariants contract (ffkit.model.invariants.four_body)."""
    return {**_three_body(term), "type": "many_body", "n_coupled": term.mix_vector.out_features,
            "mix_vector": _numbers(term.mix_vector.weight), "mix_tensor": _numbers(term.mix_tensor.weight)}


def _edge_radials(radials: nn.Module) -> Dict[str, Any]:
    return {"mix": _numbers(radials.mix.weight), "pair_factors": _numbers(radials.pair_factors)}


def _linear(layer: nn.Module) -> Dict[str, Any]:
    return {"n_in": layer.in_features, "n_out": layer.out_features, "weight": _numbers(layer.weight),
            "bias": _numbers(layer.bias)}


def _tensor_messages(term: nn.Module) -> Dict[str, Any]:
    """ffkit.model.tensor_messages.TensorMessagesML: the Bessel basis, each part's radial channels, the
    embedding's layer norm and gate network, the three part mixings and the atomic networks."""
    gates = [m for m in term.embed_gates.children() if _kind(m) == "Linear"]
    spec = {"type": "tensor_messages", "cutoff": term.cutoff, "n_basis": int(term.basis.frequencies.numel()),
            "channels": term.channels, "interactions": term.interactions, "inv_neighbors": term.inv_neighbors,
            "bessel_prefactor": term.basis.prefactor, "bessel_frequencies": _numbers(term.basis.frequencies),
            "envelope_p": term.basis.envelope.p, "embed_radials": _edge_radials(term.embed_radials),
            "embed_norm": {"weight": _numbers(term.embed_norm.weight), "bias": _numbers(term.embed_norm.bias),
                           "eps": float(term.embed_norm.eps)},
            "embed_gates": [_linear(m) for m in gates],
            "embed_mixing": _numbers(term.embed_mixing.weights), "pre_mixing": _numbers(term.pre_mixing.weights),
            "post_mixing": _numbers(term.post_mixing.weights), "readout": _readout(term.readout)}
    if term.interactions > 0:
        spec["message_radials"] = _edge_radials(term.message_radials)
    return spec


EXPORTERS = {"TabulatedPair": _pair_table, "ThreeBodyML": _three_body, "ManyBodyML": _many_body,
             "TensorMessagesML": _tensor_messages}


def kernel_spec(model: nn.Module) -> Optional[Dict[str, Any]]:
    """The kernel's description of a ForceField (pair terms already tabulated), or None if a term has no kernel."""
    terms = list(model.terms.children())
    if any(_kind(term) not in EXPORTERS for term in terms):  # of the two-layer terms, only tensor messages have one
        return None
    return {"format": KERNEL_FORMAT, "version": KERNEL_VERSION, "n_species": len(model.species),
            "reference_energies": _numbers(model.reference_energies),
            "terms": [dict(name=name, **EXPORTERS[_kind(term)](term))
                      for name, term in zip(model.term_names, terms)]}


def convention_kernel_spec(module: nn.Module) -> Optional[Dict[str, Any]]:
    """The kernel of a LAMMPS-convention module (`.model`) or of a committee of them (`.members`), or None
    when a model (or any member) has a term without a kernel, or a member is itself a committee (the kernel
    averages members with equal weights, so a nested committee runs on TorchScript), or reaches two cutoffs
    (pair_style ffkit runs no committee of message-passing models)."""
    if hasattr(module, "members"):
        members = list(module.members.children())
        if any(int(getattr(getattr(m, "model", m), "layers", 1)) > 1 for m in members):
            return None
        specs = [convention_kernel_spec(member) for member in members]
        if not specs or any(s is None or "committee" in s for s in specs):
            return None
        return {"format": KERNEL_FORMAT, "version": KERNEL_VERSION, "committee": specs}
    return kernel_spec(module.model) if hasattr(module, "model") else None


def kernel_summary(spec: Dict[str, Any]) -> Dict[str, Any]:
    """What an artifact's metadata says about the kernel it carries (metadata 'paths', `ffkit info`)."""
    members = spec.get("committee", [spec])
    terms: List[str] = []
    for member in members:
        terms += [t["type"] for t in member["terms"] if t["type"] not in terms]
    summary = {"file": KERNEL_FILE, "version": spec["version"], "precision": "float64", "terms": terms}
    if "committee" in spec:
        summary["members"] = len(members)
    return summary
