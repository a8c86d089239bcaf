"""What licensectl reports instead of a traceback: a message and an exit status.

    1  refused: by the admin function (its HTTP error), Firebase Auth, or the environment
    2  bad input: a command line that cannot mean anything (argparse's status too)
    3  unreachable: the admin function did not answer
"""

from __future__ import annotations


class CliError(Exception):
    """Printed as `licensectl: <message>` on stderr; the process exits with `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    """The command line is wrong (exit 2, as argparse's own errors)."""

    exit_code = 2
