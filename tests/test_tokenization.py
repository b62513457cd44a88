import pytest
from transformers import AutoTokenizer, BertConfig, RobertaConfig, XLNetConfig

from bertclf.errors import BertclfError
from bertclf.tokenization import (
    TokenEncoder,
    choose_max_length,
    model_token_limit,
    special_tokens,
    token_lengths,
    tokenize,
    truncate,
    windows,
)


@pytest.fixture(scope="module")
def tokenizer(packaged_model_path):
    return AutoTokenizer.from_pretrained(packaged_model_path)


def test_special_tokens_are_found_around_the_text(tokenizer):
    assert special_tokens(tokenizer) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])


@pytest.mark.parametrize("max_length", [8, 16, 64])
def test_head_truncation_equals_the_tokenizers_own(tokenizer, max_length):
    texts = ["short", "a considerably longer sentence that has to be cut somewhere in the middle of it " * 3, ""]
    expected = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    assert TokenEncoder(tokenizer, max_length)(texts) == expected


def test_tokenize_keeps_everything_without_special_tokens(tokenizer):
    long_text = "word " * 2000
    (ids,) = tokenize(tokenizer, [long_text])
    assert len(ids) == 2000
    assert tokenizer.cls_token_id not in ids


def test_token_lengths_count_the_special_tokens_from_texts_or_their_ids(tokenizer):
    texts = ["short", "word " * 600, ""]
    expected = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    assert token_lengths(tokenizer, texts) == expected == [3, 602, 2]
    assert token_lengths(tokenizer, tokenize(tokenizer, texts)) == expected


CONTENT = list(range(100, 120))  # 20 content tokens


def test_truncation_strategies_keep_exactly_the_right_tokens():
    assert truncate(CONTENT, 8, "head", None) == list(range(100, 108))
    assert truncate(CONTENT, 8, "tail", None) == list(range(112, 120))
    # head-tail: a quarter of the budget from the start, the rest from the end
    assert truncate(CONTENT, 8, "head-tail", None) == [100, 101, 114, 115, 116, 117, 118, 119]
    assert truncate(CONTENT, 8, "head-tail", 5) == [100, 101, 102, 103, 104, 117, 118, 119]
    assert truncate(CONTENT, 8, "head-tail", 0) == list(range(112, 120))
    for strategy in ("head", "tail", "head-tail"):
        assert truncate(CONTENT[:6], 8, strategy, None) == CONTENT[:6]  # a short text stays whole


def test_windows_cover_the_text_with_the_stride_as_overlap():
    assert windows(CONTENT, 8, 0, 10) == [list(range(100, 108)), list(range(108, 116)), list(range(116, 120))]
    assert windows(CONTENT, 8, 2, 10) == [list(range(100, 108)), list(range(106, 114)), list(range(112, 120))]
    assert windows(CONTENT[:16], 8, 0, 10) == [list(range(100, 108)), list(range(108, 116))]  # no empty third


def test_short_texts_are_one_window_and_long_ones_are_cut_at_max_chunks():
    assert windows(CONTENT[:5], 8, 2, 4) == [CONTENT[:5]]
    assert windows([], 8, 0, 4) == [[]]
    assert windows(CONTENT, 4, 0, 3) == [CONTENT[0:4], CONTENT[4:8], CONTENT[8:12]]


def test_token_encoder_wraps_every_window_in_special_tokens(tokenizer):
    encoder = TokenEncoder(tokenizer, 10, "chunks", stride=2, max_chunks=3)
    (document,) = encoder.from_tokens([CONTENT])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert document == [[cls, *range(100, 108), sep], [cls, *range(106, 114), sep], [cls, *range(112, 120), sep]]
    assert encoder.from_tokens([[]]) == [[[cls, sep]]]
    head_tail = TokenEncoder(tokenizer, 10, "head-tail", head_tokens=3)
    assert head_tail.from_tokens([CONTENT]) == [[cls, 100, 101, 102, 115, 116, 117, 118, 119, sep]]


def test_impossible_stride_or_head_tokens_are_named(tokenizer):
    with pytest.raises(BertclfError, match="--stride 8 must be below the 8 content tokens"):
        TokenEncoder(tokenizer, 10, "chunks", stride=8)
    with pytest.raises(BertclfError, match="--head-tokens 9 exceeds the 8 content tokens"):
        TokenEncoder(tokenizer, 10, "head-tail", head_tokens=9)


def test_auto_max_length_covers_95_percent_in_multiples_of_8():
    counts = [count % 100 + 1 for count in range(1000)]  # the 95% quantile is 96 ("higher" method)
    assert choose_max_length(counts, 512) == 96
    assert choose_max_length([3] * 1000, 512) == 8
    assert choose_max_length([1000] * 1000, 512) == 512
    assert choose_max_length([97] * 1000, 512) == 104


def test_auto_max_length_on_few_texts_covers_them_all_and_at_least_128_tokens():
    assert choose_max_length(list(range(1, 101)), 512) == 128  # 100 texts: not the 95% quantile (96)
    assert choose_max_length([20] * 998 + [300], 512) == 304  # 999 texts: the longest, not the 95% quantile
    assert choose_max_length([3] * 16, 512) == 128
    assert choose_max_length([3] * 16, 64) == 64  # the model's limit still caps it


def test_model_limit_reads_positions_and_tokenizer(tokenizer):
    assert model_token_limit(tokenizer, BertConfig(max_position_embeddings=128)) == 128
    assert model_token_limit(tokenizer, BertConfig(max_position_embeddings=1024)) == tokenizer.model_max_length
    # RoBERTa-style position ids start after the padding index: two positions are not usable.
    tokenizer_without_limit = AutoTokenizer.from_pretrained(tokenizer.name_or_path, model_max_length=int(1e30))
    assert model_token_limit(tokenizer_without_limit, RobertaConfig(max_position_embeddings=514)) == 512


def test_model_limit_ignores_an_encoder_without_a_position_limit(tokenizer):
    # XLNet's relative positions declare max_position_embeddings -1: the tokenizer's maximum decides, else 512.
    assert XLNetConfig().max_position_embeddings == -1
    assert model_token_limit(tokenizer, XLNetConfig()) == tokenizer.model_max_length
    tokenizer_without_limit = AutoTokenizer.from_pretrained(tokenizer.name_or_path, model_max_length=int(1e30))
    assert model_token_limit(tokenizer_without_limit, XLNetConfig()) == 512
