"""ffkit's GROMACS adapter (entry point `ffkit.engines: gromacs`): what `ffkit` asks of GROMACS.

The `deploy` and `doctor` subcommands, and `ffkit compile --engine gromacs` (an NNPot artifact
from a checkpoint's model or from a LAMMPS artifact).
"""


def add_commands(subparsers) -> None:
    from . import deploy, doctor

    deploy.add_parser(subparsers)
    doctor.add_parser(subparsers)


def compile_artifact(source, out, checkpoint=None, *, layout: str = "positions", test_metrics=None) -> dict:
    """`source` is a ForceField with its `checkpoint`, or the path of a LAMMPS artifact."""
    from .nnpot import compile_nnpot_from_artifact, compile_nnpot_from_checkpoint

    if checkpoint is None:
        return compile_nnpot_from_artifact(source, out, layout=layout)
    return compile_nnpot_from_checkpoint(source, checkpoint, out, layout=layout, test_metrics=test_metrics)
