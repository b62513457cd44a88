"""The classifier network and the encoders it is built on.

:mod:`~bertclf.modeling.hub` finds and loads pretrained encoders and tokenizers, :mod:`~bertclf.modeling.networks`
builds, saves and loads the classifier (encoder, pooling, head), :mod:`~bertclf.modeling.shortcuts` skips work the
classifier does not read; the names other packages use are re-exported here.
"""

from bertclf.modeling.hub import (
    load_encoder_config,
    load_tokenizer,
    resolve_model_path,
    resolve_pooling,
    sentence_pooling,
    weights_size,
)
from bertclf.modeling.networks import (
    PooledClassifier,
    build_model,
    load_model,
    save_model,
    save_tokenizer,
    uses_native_head,
    vocabulary_rows,
)
from bertclf.modeling.shortcuts import CachedFeatures, EncoderFeatures, first_token_last_layer, frozen_encoder_head

__all__ = [
    "CachedFeatures",
    "EncoderFeatures",
    "PooledClassifier",
    "build_model",
    "first_token_last_layer",
    "frozen_encoder_head",
    "load_encoder_config",
    "load_model",
    "load_tokenizer",
    "resolve_model_path",
    "resolve_pooling",
    "save_model",
    "save_tokenizer",
    "sentence_pooling",
    "uses_native_head",
    "vocabulary_rows",
    "weights_size",
]
