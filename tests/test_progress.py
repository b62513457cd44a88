"""Progress without a terminal: a log line once every LOG_EVERY_SECONDS, with the texts done, the job's figures,
the speed and the time left; nothing at all from a process whose progress is disabled."""

import io
import logging
import sys

import pytest

from bertclf.progress import Progress


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log_lines(monkeypatch):
    """The bertclf log's messages at INFO, with stderr no terminal (set in the test: pytest swaps it per phase)."""
    logger, lines = logging.getLogger("bertclf"), Lines()
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(level)


def a_minute_passes(progress):
    progress.last_line -= Progress.LOG_EVERY_SECONDS


def test_a_line_is_logged_once_every_log_interval_when_there_is_no_terminal(log_lines, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    progress = Progress("predicting", total=100)
    progress.update(40)
    assert not progress.due(1)  # just started
    a_minute_passes(progress)
    assert progress.due(2)
    progress.show(loss="0.25")
    assert not progress.due(3)  # the interval starts again at each line
    [line] = log_lines.messages
    assert line.startswith("predicting: 40/100 texts (40%), loss 0.25, ") and "texts/s" in line and "s left" in line
    progress.write("evaluation done")
    assert log_lines.messages[-1] == "evaluation done"
    progress.close()


def test_a_disabled_progress_shows_nothing(log_lines, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    progress = Progress("training", total=100, enabled=False)
    progress.update(40)
    a_minute_passes(progress)
    assert not progress.due(2)
    progress.show(loss="0.25")
    progress.write("evaluation done")
    progress.close()
    assert log_lines.messages == [] and sys.stderr.getvalue() == ""
