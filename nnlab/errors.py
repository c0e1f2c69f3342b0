"""The one exception type the CLI turns into a one-line message (anything else is a bug)."""


class NNLabError(Exception):
    """Bad input or a failed precondition the user can fix: wrong file, bad argument, NaN loss."""
