import pytest
from transformers import AutoTokenizer, BertConfig, RobertaConfig

from bertclf.tokenization import choose_max_length, encode, model_token_limit, special_tokens, tokenize, wrap


@pytest.fixture(scope="module")
def tokenizer(packaged_model_path):
    return AutoTokenizer.from_pretrained(packaged_model_path)


def test_special_tokens_are_found_around_the_text(tokenizer):
    assert special_tokens(tokenizer) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])


@pytest.mark.parametrize("max_length", [8, 16, 64])
def test_head_truncation_equals_the_tokenizers_own(tokenizer, max_length):
    texts = ["short", "a considerably longer sentence that has to be cut somewhere in the middle of it " * 3, ""]
    expected = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    assert encode(tokenizer, texts, max_length) == expected


def test_tokenize_keeps_everything_without_special_tokens(tokenizer):
    long_text = "word " * 2000
    (ids,) = tokenize(tokenizer, [long_text])
    assert len(ids) == 2000
    assert tokenizer.cls_token_id not in ids


def test_wrap_keeps_the_budget():
    assert wrap(list(range(10)), [101], [102], 6) == [101, 0, 1, 2, 3, 102]
    assert wrap([5], [101], [102], 6) == [101, 5, 102]


def test_auto_max_length_covers_95_percent_in_multiples_of_8():
    counts = list(range(1, 101))  # the 95% quantile is 96 ("higher" method)
    assert choose_max_length(counts, 512) == 96
    assert choose_max_length([3] * 50, 512) == 8
    assert choose_max_length([1000] * 10, 512) == 512
    assert choose_max_length([97] * 20, 512) == 104


def test_model_limit_reads_positions_and_tokenizer(tokenizer):
    assert model_token_limit(tokenizer, BertConfig(max_position_embeddings=128)) == 128
    assert model_token_limit(tokenizer, BertConfig(max_position_embeddings=1024)) == tokenizer.model_max_length
    # RoBERTa-style position ids start after the padding index: two positions are not usable.
    tokenizer_without_limit = AutoTokenizer.from_pretrained(tokenizer.name_or_path, model_max_length=int(1e30))
    assert model_token_limit(tokenizer_without_limit, RobertaConfig(max_position_embeddings=514)) == 512
