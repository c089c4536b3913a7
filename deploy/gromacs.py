"""Build GROMACS with NNPot (Libtorch) against this environment's torch: `python deploy/gromacs.py --source TARBALL`.

The same as `ffkit deploy gromacs --source TARBALL`; the recipe itself is
`ffkit_gromacs.deploy` (installed with ffkit, so the CLI can run it). See deploy/README.md.
"""

import argparse
import sys

from ffkit.errors import FFKitError
from ffkit_gromacs.deploy import add_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="deploy/gromacs.py", description=__doc__)
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deploy", "gromacs", *sys.argv[1:]])
    try:
        sys.exit(args.func(args))
    except FFKitError as exc:
        print(f"deploy gromacs: error: {exc}", file=sys.stderr)
        sys.exit(2)
