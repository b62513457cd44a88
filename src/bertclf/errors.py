"""The one exception type that the command line turns into a one-line message and exit code 2."""


class BertclfError(Exception):
    """A problem with the user's input (data, options, model directory), not a bug in bertclf.

    The message must name the problem in one line; the CLI prints it without a traceback.
    """
