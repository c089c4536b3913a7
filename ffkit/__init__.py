"""ffkit: force fields anywhere on the speed–accuracy curve, from MM to many-body MLFFs.

Importing the package is light on purpose (no torch), so that entry points and the CLI start fast.
"""

__version__ = "0.1.0"
