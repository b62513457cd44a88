"""The architecture matrix: tiny random encoders of each family (32 wide, 2 layers, 2 heads, the packaged BERT
tokenizer's vocabulary), trained, predicted, chunked, frozen and exported to int8 ONNX; what a family cannot do
ends in one line naming the family and the feature. Quick checks of the per-architecture defects come first."""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    AlbertConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    FunnelBaseModel,
    FunnelConfig,
    LongformerConfig,
    ModernBertConfig,
    MPNetConfig,
    PretrainedConfig,
    RobertaConfig,
    XLMRobertaConfig,
    XLNetConfig,
)

from bertclf import TextClassifier
from bertclf.errors import BertclfError
from bertclf.modeling import PooledClassifier, first_token_last_layer
from bertclf.training.objectives import encoder_depths
from tests.helpers import make_texts

MATRIX = ["bert", "distilbert", "roberta", "xlm-roberta", "albert", "electra", "deberta-v2", "mpnet", "modernbert",
          "longformer"]
# (family, feature) pairs bertclf cannot serve: each must end in one BertclfError line naming both.
UNSUPPORTED = {("longformer", "onnx-int8")}  # ONNX Runtime cannot reshape its int8 graph's attention


def tiny_config(family: str, tokenizer) -> PretrainedConfig:
    """A 2-layer, 32-wide configuration of ``family`` over the tokenizer's vocabulary and special tokens."""
    ids = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    common = {**ids, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
              "max_position_embeddings": 130}
    ends = {"bos_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id}
    configs = {
        "bert": lambda: BertConfig(**common),
        "distilbert": lambda: DistilBertConfig(**ids, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                               max_position_embeddings=130),
        "roberta": lambda: RobertaConfig(**common, **ends),
        "xlm-roberta": lambda: XLMRobertaConfig(**common, **ends),
        "albert": lambda: AlbertConfig(**common, embedding_size=16),
        "electra": lambda: ElectraConfig(**common, embedding_size=16),
        # as DeBERTa-v3 is configured: relative attention both ways, no absolute positions
        "deberta-v2": lambda: DebertaV2Config(**common, relative_attention=True, pos_att_type=["p2c", "c2p"],
                                              position_biased_input=False),
        "mpnet": lambda: MPNetConfig(**common, **ends),
        "modernbert": lambda: ModernBertConfig(**common, **ends, cls_token_id=tokenizer.cls_token_id,
                                               sep_token_id=tokenizer.sep_token_id, local_attention=16),
        "longformer": lambda: LongformerConfig(**common, **ends, sep_token_id=tokenizer.sep_token_id,
                                               attention_window=8),
        "xlnet": lambda: XLNetConfig(**ids, **ends, d_model=32, n_layer=2, n_head=2, d_inner=64),
        "funnel": lambda: FunnelConfig(**ids, block_sizes=[1, 1], num_decoder_layers=1, d_model=32, n_head=2,
                                       d_head=16, d_inner=64),
    }
    return configs[family]()


def tiny_family_model(family: str, directory: Path, tokenizer_path: str) -> str:
    """A random tiny encoder of ``family`` saved with the packaged tokenizer (padding on the left for XLNet, as its
    own tokenizer pads), as a local model directory."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    if family == "xlnet":
        tokenizer.padding_side = "left"
    torch.manual_seed(0)
    config = tiny_config(family, tokenizer)
    # Funnel's AutoModel is two classes (with and without its decoder): classification builds on the base one.
    encoder = FunnelBaseModel(config) if family == "funnel" else AutoModel.from_config(config)
    encoder.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module")
def tokenizer(packaged_model_path):
    return AutoTokenizer.from_pretrained(packaged_model_path)


def quick_options(model: str) -> dict:
    return {"model": model, "epochs": 1, "batch_size": 8, "max_length": 32, "seed": 3, "learning_rate": 5e-3,
            "warmup_ratio": 0.0, "test_size": 0, "low_label": "off",
            "min_steps": 0}  # the fine-tune's features, on few texts, in one short epoch


# --- item 20: the last-layer shortcut, padding side and layer decay on other architectures -----------------------


@pytest.mark.parametrize("family", ["deberta-v2", "mpnet", "longformer", "bert"])
def test_cls_pooling_runs_on_configs_without_is_decoder(family, tokenizer):
    torch.manual_seed(0)
    encoder = AutoModel.from_config(tiny_config(family, tokenizer)).eval()
    model = PooledClassifier(encoder, 3, "cls", "mlp", None, 0.0).eval()
    input_ids = torch.tensor([[101, 2000, 2001, 2002, 102, 0], [101, 2003, 2004, 2005, 2006, 102]])
    attention_mask = (input_ids != 0).long()
    with torch.no_grad():
        whole = model(input_ids, attention_mask).logits
        with first_token_last_layer(model):
            shortcut = model(input_ids, attention_mask).logits
    torch.testing.assert_close(shortcut, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [{}, {"head": "mlp"}, {"long_text": "chunks"}], ids=["native", "head mlp",
                                                                                     "chunks"])
def test_xlnet_trains_and_its_predictions_do_not_move_with_the_batch_size(tmp_path, packaged_model_path, options):
    """XLNet pads on the left: its own head and a 'cls'-pooled one alike read its last real token, never padding."""
    model = tiny_family_model("xlnet", tmp_path / "xlnet", packaged_model_path)
    classifier = TextClassifier(**quick_options(model), **options).fit(make_texts(60, seed=1),
                                                                        val=make_texts(24, seed=2))
    texts = make_texts(12, seed=4, min_words=1, max_words=20)["text"].tolist()
    alone = np.concatenate([classifier.predict_proba([text]) for text in texts])
    together = classifier.set_params(eval_batch_size=12).predict_proba(texts)
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_mean_pooling_on_an_encoder_that_shortens_the_sequence_asks_for_cls_pooling(tmp_path, packaged_model_path):
    model = tiny_family_model("funnel", tmp_path / "funnel", packaged_model_path)
    with pytest.raises(BertclfError, match=r"^funnel shortens the sequence inside its encoder, so mean pooling cannot "
                                           r"weigh its token vectors by the padding mask: use --pooling cls$"):
        TextClassifier(**quick_options(model), pooling="mean").fit(make_texts(40, seed=1), val=make_texts(12, seed=2))


@pytest.mark.parametrize(("family", "layers"), [("albert", 1), ("funnel", 2), ("xlnet", 2), ("deberta-v2", 2)])
def test_layer_decay_finds_each_architectures_layers_with_embeddings_at_the_bottom(family, layers, tokenizer):
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, tokenizer))
    depths = encoder_depths(model)
    embedding = {id(parameter) for parameter in model.get_input_embeddings().parameters()}
    names = {name for name, parameter in model.named_parameters() if id(parameter) in embedding}
    assert names and all(depths[name] == 0 for name in names)
    assert max(depths.values()) == layers
    assert sorted({depth for depth in depths.values()}) == list(range(layers + 1))


def test_layer_decay_on_an_encoder_without_a_layer_list_is_one_line_naming_it():
    class Flat(torch.nn.Module):  # an encoder whose layers are no list bertclf can find
        def __init__(self):
            super().__init__()
            self.config = BertConfig(hidden_size=8)
            self.block = torch.nn.Linear(8, 8)

    with pytest.raises(BertclfError, match=r"^--layer-decay: cannot tell the layers of the bert encoder apart$"):
        encoder_depths(PooledClassifier(Flat(), 2, "cls", "linear", None, 0.0))


# --- the matrix ----------------------------------------------------------------------------------------------------


def attempt(family: str, feature: str, step):
    """Run ``step``; a feature the family cannot serve must be listed in UNSUPPORTED and fail in one line naming
    the family and the feature."""
    if (family, feature) not in UNSUPPORTED:
        return step()
    with pytest.raises(BertclfError) as raised:
        step()
    message = str(raised.value)
    assert family in message and feature in message and "\n" not in message
    return None


@pytest.mark.slow
@pytest.mark.parametrize("family", MATRIX)
def test_family_trains_predicts_chunks_freezes_and_exports_int8(family, tmp_path, packaged_model_path):
    model = tiny_family_model(family, tmp_path / family, packaged_model_path)
    train, val = make_texts(60, seed=1), make_texts(24, seed=2)
    texts = make_texts(9, seed=5)["text"].tolist()
    options = quick_options(model)

    trained = attempt(family, "train", lambda: TextClassifier(**options).fit(train, val=val))
    if trained is not None:
        probabilities = trained.predict_proba(texts)
        assert probabilities.shape == (9, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
        assert set(trained.predict(texts)) <= {"sport", "tech", "food"}

    def chunked() -> TextClassifier:
        return TextClassifier(**{**options, "max_length": 16}, long_text="chunks", max_chunks=3).fit(train, val=val)

    chunks = attempt(family, "chunks", chunked)
    if chunks is not None:
        assert chunks.predict_proba(texts).shape == (9, 3)
    frozen = attempt(family, "freeze", lambda: TextClassifier(**options, freeze_encoder=True).fit(train, val=val))
    if frozen is not None:
        assert frozen.predict_proba(texts).shape == (9, 3)

    if trained is not None:
        def exported() -> np.ndarray:
            trained.export(tmp_path / "export", quantize="int8", check_data=val)
            return TextClassifier.load(tmp_path / "export", runtime="onnx-int8").predict_proba(texts)

        int8 = attempt(family, "onnx-int8", exported)
        if int8 is not None:
            assert int8.shape == (9, 3) and np.isfinite(int8).all()


@pytest.mark.slow
def test_funnel_onnx_failure_is_one_line_naming_the_architecture_and_runtime(tmp_path, packaged_model_path):
    model = tiny_family_model("funnel", tmp_path / "funnel", packaged_model_path)
    val = make_texts(24, seed=2)
    classifier = TextClassifier(**quick_options(model)).fit(make_texts(60, seed=1), val=val)
    with pytest.raises(BertclfError) as raised:
        classifier.export(tmp_path / "export", check_data=val)
    assert "funnel" in str(raised.value) and "onnx" in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "export").exists()
