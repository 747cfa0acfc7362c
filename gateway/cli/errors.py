"""Errors the CLI shows to the user without a traceback."""


class CommandError(Exception):
    """A user-facing error: printed as ``crg: message``, exit status 2."""
