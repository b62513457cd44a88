"""``bertclf serve``: the REST server (needs the ``serve`` extra).

:mod:`~bertclf.serving.settings` holds its limits (light: the command's ``--help`` lists them);
:mod:`~bertclf.serving.schemas` what it takes and answers, with one status per kind of error;
:mod:`~bertclf.serving.batcher` the micro-batching of concurrent requests, off the event loop;
:mod:`~bertclf.serving.app` the routes, the limits and the metrics.
"""

from typing import TYPE_CHECKING, Any

from bertclf.serving.settings import ServeSettings

if TYPE_CHECKING:
    from bertclf.serving.app import create_app

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from bertclf.serving.app import create_app  # FastAPI on first use: `bertclf --help` imports this package

        return create_app
    raise AttributeError(f"module 'bertclf.serving' has no attribute {name!r}")
