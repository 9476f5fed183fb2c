"""One exception type for user-facing errors: the CLI prints its message on one line and exits 2."""


class SnnRobustError(Exception):
    """A problem with the user's input (config, data, checkpoint); the message names it in one line."""
