import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, RobertaConfig

from bertclf.config import DEFAULT_MODEL, ClassifierConfig
from bertclf.errors import BertclfError
from bertclf.modeling import (
    PooledClassifier,
    build_model,
    first_token_last_layer,
    load_model,
    load_tokenizer,
    resolve_model_path,
    resolve_pooling,
    save_model,
    sentence_pooling,
    uses_native_head,
)
from bertclf.modeling.networks import ChunkPooling, group_window_vectors, mean_pool
from bertclf.training import head_parameter_names, start_at_label_priors
from tests.helpers import sentence_transformers_layout


def test_default_model_resolves_to_the_packaged_copy(packaged_model_path):
    assert resolve_model_path(DEFAULT_MODEL) == packaged_model_path
    assert resolve_model_path("bert-base-uncased") == "bert-base-uncased"  # hub ids pass through


def test_missing_or_non_model_directories_are_named(tmp_path):
    with pytest.raises(BertclfError, match="model directory not found"):
        resolve_model_path(str(tmp_path / "nope" / "deeper"))
    with pytest.raises(BertclfError, match=r"has no config\.json"):
        resolve_model_path(str(tmp_path))


def test_unknown_hub_id_offline_is_one_line():
    with pytest.raises(BertclfError, match="cannot load model 'no-such-org/no-such-model'") as raised:
        load_tokenizer("no-such-org/no-such-model")
    assert "\n" not in str(raised.value)


def test_sentence_pooling_is_read_from_a_sentence_transformers_layout(tiny_model, packaged_model_path, tmp_path):
    assert sentence_pooling(DEFAULT_MODEL) == "mean"  # all-MiniLM-L6-v2 averages its tokens
    assert sentence_pooling(tiny_model) is None  # a plain transformers directory names none
    model = shutil.copytree(tiny_model, tmp_path / "model")
    assert sentence_pooling(sentence_transformers_layout(model, cls_token=True, mean_tokens=False)) == "cls"
    assert sentence_pooling(sentence_transformers_layout(model, mean_tokens=True, max_tokens=True)) is None
    (model / "1_Pooling" / "config.json").write_text("{not json")
    assert sentence_pooling(str(model)) is None


def test_auto_pooling_is_cls_unless_a_frozen_encoder_makes_mean_sentence_vectors(tiny_model, packaged_model_path):
    assert resolve_pooling(ClassifierConfig()) == "cls"  # fine-tuned, the first token learns to summarise
    assert resolve_pooling(ClassifierConfig(freeze_encoder=True)) == "mean"
    assert resolve_pooling(ClassifierConfig(freeze_encoder=True, pooling="cls")) == "cls"  # asked for
    assert resolve_pooling(ClassifierConfig(model=tiny_model, freeze_encoder=True)) == "cls"
    model = build_model(ClassifierConfig(freeze_encoder=True), ["a", "b"])
    assert isinstance(model, PooledClassifier) and model.pooling == "mean"


def test_cls_linear_is_the_architectures_own_classifier(tiny_model):
    model = build_model(ClassifierConfig(model=tiny_model), ["a", "b", "c"])
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert head_parameter_names(model) == {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight",
                                           "bert.pooler.dense.bias"}


@pytest.mark.parametrize(("pooling", "head"), [("mean", "linear"), ("cls", "mlp"), ("mean", "mlp")])
def test_other_poolings_and_heads_wrap_the_encoder(tiny_model, pooling, head):
    model = build_model(ClassifierConfig(model=tiny_model, pooling=pooling, head=head, head_hidden_size=8), [0, 1])
    assert isinstance(model, PooledClassifier)
    assert all(name.startswith("head.") for name in head_parameter_names(model))
    logits = model(input_ids=torch.tensor([[101, 2000, 102, 0]]), attention_mask=torch.tensor([[1, 1, 1, 0]])).logits
    assert logits.shape == (1, 2)


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


@pytest.mark.parametrize(("pooling", "head"), [("cls", "linear"), ("mean", "mlp")])
def test_save_and_load_round_trip_gives_identical_outputs(tiny_model, tmp_path, pooling, head):
    config = ClassifierConfig(model=tiny_model, pooling=pooling, head=head)
    model = build_model(config, ["x", "y"]).eval()
    save_model(model, load_tokenizer(tiny_model), tmp_path, max_length=32)
    loaded = load_model(tmp_path, config, 2).eval()
    inputs = {"input_ids": torch.tensor([[101, 2000, 2001, 102]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    torch.testing.assert_close(model(**inputs).logits, loaded(**inputs).logits)
    assert load_tokenizer(str(tmp_path)).model_max_length == 32


def test_corrupt_weights_are_reported(tiny_model, tmp_path):
    config = ClassifierConfig(model=tiny_model)
    save_model(build_model(config, ["x", "y"]), load_tokenizer(tiny_model), tmp_path, max_length=32)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BertclfError, match="cannot load the model"):
        load_model(tmp_path, config, 2)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(BertclfError, match="cannot load the model"):
        load_model(tmp_path, config, 2)


def test_group_window_vectors_pads_texts_and_masks_the_padding():
    vectors = torch.arange(12, dtype=torch.float32).reshape(6, 2)  # windows of 3 texts: 1 + 3 + 2
    padded, mask = group_window_vectors(vectors, torch.tensor([1, 3, 2]))
    assert padded.shape == (3, 3, 2)
    assert mask.tolist() == [[True, False, False], [True, True, True], [True, True, False]]
    assert padded[1].tolist() == vectors[1:4].tolist() and padded[0, 1:].abs().sum() == 0


@pytest.mark.parametrize("kind", ["mean", "max", "attention"])
def test_chunk_pooling_ignores_padded_windows(kind):
    torch.manual_seed(0)
    pooling = ChunkPooling(kind, 4)
    windows = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    pooled = pooling(windows, mask)
    assert pooled.shape == (2, 4)
    changed = windows.clone()
    changed[0, 2] = 1e6  # whatever sits in a padded slot
    torch.testing.assert_close(pooling(changed, mask), pooled)
    alone = pooling(windows[:1, :2], torch.tensor([[True, True]]))  # the same text without padding
    torch.testing.assert_close(alone, pooled[:1])
    if kind == "mean":
        torch.testing.assert_close(pooled[0], windows[0, :2].mean(dim=0))
    if kind == "max":
        torch.testing.assert_close(pooled[1], windows[1].amax(dim=0))


@pytest.mark.parametrize("chunk_pooling", ["mean", "attention"])
def test_chunked_classifier_gives_one_row_per_text_and_round_trips(tiny_model, tmp_path, chunk_pooling):
    config = ClassifierConfig(model=tiny_model, long_text="chunks", chunk_pooling=chunk_pooling)
    model = build_model(config, ["x", "y", "z"]).eval()
    assert isinstance(model, PooledClassifier) and not uses_native_head(config)
    inputs = {"input_ids": torch.randint(1000, 2000, (5, 6)), "attention_mask": torch.ones(5, 6, dtype=torch.long),
              "chunk_counts": torch.tensor([2, 1, 2])}
    logits = model(**inputs).logits
    assert logits.shape == (3, 3)
    with torch.no_grad():  # the second text alone, as one window, gives the same row
        single = model(input_ids=inputs["input_ids"][2:3], attention_mask=inputs["attention_mask"][2:3],
                       chunk_counts=torch.tensor([1])).logits
    torch.testing.assert_close(single[0], logits[1])
    if chunk_pooling == "attention":
        assert "chunk_pooling.score.weight" in head_parameter_names(model)
    save_model(model, load_tokenizer(tiny_model), tmp_path, max_length=6)
    loaded = load_model(tmp_path, config, 3).eval()
    torch.testing.assert_close(loaded(**inputs).logits, logits)
    with pytest.raises(BertclfError, match=r"does not match bertclf\.yaml.s head and pooling"):
        load_model(tmp_path, ClassifierConfig(model=tiny_model, long_text="chunks", head="mlp"), 3)


@pytest.mark.parametrize(("pooling", "head"), [("cls", "linear"), ("mean", "mlp")])
def test_multilabel_heads_start_at_the_label_frequencies(tiny_model, pooling, head):
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]])  # 3, 1 and 0 positives of 4 texts
    model = build_model(ClassifierConfig(model=tiny_model, pooling=pooling, head=head), ["a", "b", "c"], True)
    start_at_label_priors(model, labels, pos_weight=None)
    output = model.classifier if head == "linear" else model.head.layers[-1]
    smoothed = torch.tensor([3.5, 1.5, 0.5]) / 5  # half a positive and half a negative added to each label
    torch.testing.assert_close(torch.sigmoid(output.bias), smoothed)
    # with pos_weight w, BCE's best constant probability is w.p / (w.p + 1 - p)
    weights = torch.tensor([1 / 3, 3.0, 1.0])
    start_at_label_priors(model, labels, pos_weight=weights)
    torch.testing.assert_close(torch.sigmoid(output.bias), weights * smoothed / (weights * smoothed + 1 - smoothed))


def tiny_classifier(config_class: type, attention: str) -> torch.nn.Module:
    """A 2-layer classifier of the given architecture without dropout, so training-mode outputs are comparable."""
    torch.manual_seed(0)
    config = config_class(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0, num_labels=3)
    return AutoModelForSequenceClassification.from_config(config, attn_implementation=attention)


def padded_batch() -> dict[str, torch.Tensor]:
    attention_mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 2 + [0] * 7])
    return {"input_ids": torch.randint(5, 120, (3, 9)) * attention_mask, "attention_mask": attention_mask}


def logits_and_gradients(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list]:
    model.zero_grad()
    logits = model(**batch).logits
    logits.square().sum().backward()
    return logits.detach(), [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("config_class", [BertConfig, RobertaConfig])
def test_first_token_last_layer_keeps_logits_and_gradients(config_class, attention):
    model = tiny_classifier(config_class, attention).train()
    batch = padded_batch()
    full_logits, full_gradients = logits_and_gradients(model, batch)
    last = model.base_model.encoder.layer[-1]
    with first_token_last_layer(model):
        assert "forward" in vars(last)  # the shortcut is in force, not silently skipped
        logits, gradients = logits_and_gradients(model, batch)
        with first_token_last_layer(model):  # evaluation inside training
            pass
        assert "forward" in vars(last)
    assert "forward" not in vars(last)
    torch.testing.assert_close(logits, full_logits)
    assert len(gradients) == len(full_gradients)
    for ours, theirs in zip(gradients, full_gradients, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_first_token_last_layer_serves_cls_pooling_and_leaves_mean_pooling_alone(tiny_model):
    batch = {"input_ids": torch.tensor([[101, 2000, 2001, 102], [101, 2002, 102, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}
    for pooling, shortened in (("cls", True), ("mean", False)):
        model = build_model(ClassifierConfig(model=tiny_model, pooling=pooling, head="mlp"), [0, 1]).eval()
        last = model.encoder.encoder.layer[-1]
        names = set(model.state_dict())
        full = model(**batch).logits
        with first_token_last_layer(model):
            assert ("forward" in vars(last)) is shortened
            assert set(model.state_dict()) == names  # what is saved does not change
            torch.testing.assert_close(model(**batch).logits, full)
