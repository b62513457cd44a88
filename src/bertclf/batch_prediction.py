"""The Ray Data predictor under the name the README has always used; it lives in :mod:`bertclf.integrations.ray`."""

from bertclf.integrations.ray import BatchPredictor

__all__ = ["BatchPredictor"]
