"""ffkit for GROMACS: NNPot artifacts, the matching mdp/ndx/topology pieces, and checks.

GROMACS's NNPot interface (2025+) loads a TorchScript module and calls it with tensors named in
the mdp file. This package wraps an ffkit model in that calling convention (`nnpot`), writes
the mdp block and index group that match the artifact (`mdp`), topology pieces (`topology`),
and refuses set-ups that would give silently wrong results (`checks`). Importing it is light:
torch is imported only by the modules that need it.
"""
