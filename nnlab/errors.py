"""The one exception type the CLI turns into a one-line message (anything else is a bug)."""


class NNLabError(Exception):
    """Bad input or a failed precondition the user can fix: wrong file, bad argument, NaN loss."""


class Interrupted(NNLabError):
    """A Ctrl-C, said with what was kept and how to go on; the CLI exits with 130 (as for any
    interruption), so that scripts can tell it from an error."""
