"""Exceptions that reach the user: the CLI prints their message without a traceback."""


class FFKitError(Exception):
    """A user-facing error whose message says what is wrong and how to fix it."""


class DataError(FFKitError, ValueError):
    """Bad input data: the message names the file, the frame (0-based) and the field, and the fix."""
