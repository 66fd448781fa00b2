"""The one exception type for mistakes a user can fix (paths, keys, files, episodes)."""


class UserError(Exception):
    """Carries one message naming the thing that is wrong and the fix; the CLIs print it
    without a traceback and exit non-zero."""


class Interrupted(KeyboardInterrupt):
    """A stop the user asked for (Ctrl-C), after the run saved what it needs to continue; the CLIs
    print its message and exit 130."""
