"""bertclf: fine-tune BERT-family encoders into accurate, fast text classifiers."""

import logging
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bertclf")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"



class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the message (it may be redirected after import)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


# Progress and warnings go to stderr; silence with logging.getLogger("bertclf").setLevel(logging.WARNING).
_log = logging.getLogger("bertclf")
if not _log.handlers:
    _handler = _StderrHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False

from bertclf.classifier import TextClassifier  # noqa: E402
from bertclf.config import ClassifierConfig  # noqa: E402
from bertclf.errors import BertclfError  # noqa: E402

__all__ = ["BertclfError", "ClassifierConfig", "TextClassifier", "__version__"]
