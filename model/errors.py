"""The one exception type for mistakes a user can fix (paths, keys, files, episodes)."""


class UserError(Exception):
    """Carries one message naming the thing that is wrong and the fix; the CLIs print it
    without a traceback and exit non-zero."""
