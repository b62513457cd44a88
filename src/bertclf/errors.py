"""The one exception type that the command line turns into a one-line message and exit code 2."""


class BertclfError(Exception):
    """A problem with the user's input (data, options, model directory), not a bug in bertclf.

    The message must name the problem in one line; the CLI prints it without a traceback.
    """


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: raised from the signal handler so that clean-up code runs on the way out, or by
    training once it has saved a checkpoint (``checkpoint``: the run's staging directory to resume)."""

    def __init__(self, signal_number: int, checkpoint: str | None = None):
        super().__init__(signal_number if checkpoint is None else
                         f"training stopped by signal {signal_number}; its checkpoint is in {checkpoint}")
        self.signal_number, self.checkpoint = signal_number, checkpoint


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none: a library's error inside ours."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
