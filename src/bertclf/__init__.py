"""bertclf: fine-tune BERT-family encoders into accurate, fast text classifiers.

Progress and warnings go to the ``bertclf`` logger; as a library, bertclf adds no handler of its own (the
``bertclf`` command does). The public classes are imported on first use, so ``bertclf --help`` does not
load torch.
"""

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("bertclf")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

logging.getLogger("bertclf").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from bertclf.classifier import TextClassifier
    from bertclf.config import ClassifierConfig
    from bertclf.errors import BertclfError

_PUBLIC = {"TextClassifier": "bertclf.classifier", "ClassifierConfig": "bertclf.config",
           "BertclfError": "bertclf.errors"}
__all__ = ["BertclfError", "ClassifierConfig", "TextClassifier", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bertclf' has no attribute {name!r}")
