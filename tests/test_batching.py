import numpy as np
import torch

from bertclf.batching import (
    EncodedTexts,
    LengthBucketSampler,
    PadBatch,
    is_chunked,
    pad,
    split_batch,
)


def lengths_for(count, seed=0):
    return np.random.default_rng(seed).integers(1, 200, size=count).tolist()


def test_every_text_appears_once_per_epoch_in_bounded_batches():
    lengths = lengths_for(1000)
    sampler = LengthBucketSampler(lengths, batch_size=32, seed=1)
    for epoch in range(2):
        sampler.arrange(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 32
        assert sorted(i for batch in batches for i in batch) == list(range(1000))
        assert all(len(batch) <= 32 for batch in batches)


def test_bucketing_pads_far_less_than_random_batches():
    lengths = np.array(lengths_for(4096))

    def padded_tokens(batches):
        return sum(len(batch) * lengths[batch].max() for batch in batches)

    bucketed = padded_tokens(list(LengthBucketSampler(lengths.tolist(), batch_size=32, seed=1)))
    random_order = np.random.default_rng(0).permutation(len(lengths))
    unsorted = padded_tokens([random_order[i : i + 32] for i in range(0, len(lengths), 32)])
    assert bucketed < 0.6 * unsorted
    assert bucketed < 1.1 * lengths.sum()


def test_order_is_reproducible_from_the_seed_and_changes_between_epochs():
    lengths = lengths_for(500)
    first, second = LengthBucketSampler(lengths, 16, seed=3), LengthBucketSampler(lengths, 16, seed=3)
    epoch_one = list(first)
    assert epoch_one == list(second) == list(first)  # iterating again repeats the epoch, not the next one
    first.arrange(1)
    assert list(first) != epoch_one
    assert list(LengthBucketSampler(lengths, 16, seed=4)) != epoch_one


def test_a_resumed_epoch_draws_the_batches_the_interrupted_one_would_have():
    lengths = lengths_for(500)
    whole = LengthBucketSampler(lengths, 16, seed=3)
    whole.arrange(2)
    resumed = LengthBucketSampler(lengths, 16, seed=3)  # a new process: nothing carried over but the numbers
    resumed.arrange(2, skip=5)
    assert list(resumed) == list(whole)[5:]


def test_padding_and_attention_mask():
    batch = PadBatch(pad_token_id=0)([([5, 6, 7], np.int64(1)), ([8], np.int64(0))])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.int64
    assert "labels" not in PadBatch(0)([([5], None)])


def test_padding_on_the_left_for_tokenizers_that_pad_there():
    # XLNet's head reads the last position: padding on the left keeps each row's own last token there.
    batch = PadBatch(pad_token_id=0, padding_side="left")([([5, 6, 7], np.int64(1)), ([8], np.int64(0))])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    input_ids, attention_mask = pad([[1, 2], [3, 4, 5]], 9, "left")
    assert input_ids.tolist() == [[9, 1, 2], [3, 4, 5]] and attention_mask.tolist() == [[0, 1, 1], [1, 1, 1]]


def chunked_items():
    """Three texts of 2, 1 and 3 windows; labels 0, 1, 2."""
    return [([[1, 5, 2], [1, 6]], np.int64(0)), ([[1, 7, 7, 2]], np.int64(1)), ([[1, 8], [1, 9], [1, 10]], np.int64(2))]


def test_chunked_texts_flatten_into_window_rows():
    batch = PadBatch(pad_token_id=0)(chunked_items())
    assert batch["input_ids"].tolist() == [[1, 5, 2, 0], [1, 6, 0, 0], [1, 7, 7, 2], [1, 8, 0, 0], [1, 9, 0, 0],
                                           [1, 10, 0, 0]]
    assert batch["chunk_counts"].tolist() == [2, 1, 3] and batch["labels"].tolist() == [0, 1, 2]
    assert EncodedTexts([ids for ids, _ in chunked_items()]).lengths == [5, 4, 6]


def test_chunked_texts_are_told_from_their_first_text():
    assert is_chunked([ids for ids, _ in chunked_items()]) and EncodedTexts([ids for ids, _ in chunked_items()]).chunked
    assert not is_chunked([[1, 5, 2], [1, 2]]) and not is_chunked([]) and not EncodedTexts([[1, 2]]).chunked


def test_split_batch_cuts_between_texts_within_the_window_budget():
    batch = PadBatch(pad_token_id=0)(chunked_items())
    parts = split_batch(batch, max_windows=3)
    assert [part["chunk_counts"].tolist() for part in parts] == [[2, 1], [3]]
    assert [part["labels"].tolist() for part in parts] == [[0, 1], [2]]
    assert torch.equal(torch.cat([part["input_ids"] for part in parts]), batch["input_ids"])
    # a text with more windows than the budget is a part of its own
    assert [part["chunk_counts"].tolist() for part in split_batch(batch, 1)] == [[2], [1], [3]]
    plain = PadBatch(0)([([5], None)])
    assert split_batch(plain, 1) == [plain]
