"""Errors that reach the user as one line (file and problem), never as a traceback."""

from pathlib import Path


class IchfedError(Exception):
    """A problem with the user's input or settings that the user can fix."""


class InputError(IchfedError):
    """A file or folder that cannot be used; the message names it and says why."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(problem.split())  # a library's multi-line message, on one line
        problem = self.problem
        super().__init__(f"{path}: {problem}")
