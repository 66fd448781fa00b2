"""The project's user-facing exception types, importable from util/: `UserError` (it lives in
model/errors.py so that model/ depends on nothing in util/) and `Interrupted`."""
from model.errors import UserError

__all__ = ["Interrupted", "UserError"]


class Interrupted(KeyboardInterrupt):
    """A stop the user asked for (Ctrl-C), after the run saved what it needs to continue; the CLIs
    print its message and exit 130."""
