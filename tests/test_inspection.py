import pytest
from transformers import AutoTokenizer

from bertclf.data import Examples
from bertclf.reporting.inspection import (
    DataInspection,
    format_inspection,
    inspect_data,
    summarize_part,
    vocabulary_coverage,
)

ENGLISH = ["the match ended with a late goal from the young striker",
           "new phones ship with faster chips and better cameras this year",
           "bake the bread for forty minutes until the crust is golden"] * 20
RUSSIAN = ["сегодня был отличный день и мы гуляли в парке до вечера",
           "ужасное обслуживание больше никогда не приду в этот ресторан",
           "спасибо всем кто поздравил меня с днем рождения"] * 20
CHINESE = ["我们今天去公园散步，天气很好。", "这个产品的质量非常差，我要退货。", "谢谢大家的帮助和支持。"] * 20


@pytest.fixture(scope="module")
def tokenizer(packaged_model_path):
    return AutoTokenizer.from_pretrained(packaged_model_path)


def test_a_part_counts_duplicates_conflicts_and_labels():
    part = Examples(["a", "b", "a", "c", "c", "d"], ["x", "y", "x", "x", "y", "y"], "train", skipped_empty=2)
    summary = summarize_part(part)
    assert (summary.rows, summary.empty_texts, summary.duplicate_texts, summary.conflicting_texts) == (6, 2, 2, 1)
    assert summary.label_counts == {"x": 3, "y": 3} and summary.labels_per_text is None
    multilabel = summarize_part(Examples(["a", "b"], [("x", "y"), ("y",)], "train", multilabel=True))
    assert multilabel.label_counts == {"y": 2, "x": 1} and multilabel.labels_per_text == 1.5


def test_english_is_covered_and_draws_no_warning(tokenizer):
    coverage = vocabulary_coverage(tokenizer, ENGLISH)
    assert coverage.script == "LATIN" and coverage.unit == "word"
    assert coverage.tokens_per_unit < 1.6 and coverage.shattered_share < 0.05 and coverage.unknown_share == 0
    assert coverage.problem() is None


def test_russian_under_an_english_vocabulary_is_read_as_letters(tokenizer):
    coverage = vocabulary_coverage(tokenizer, RUSSIAN)
    assert coverage.script == "CYRILLIC"
    assert coverage.tokens_per_unit > 2.5 and coverage.shattered_share > 0.3
    assert "single letters" in coverage.problem()


def test_chinese_is_measured_per_character_and_its_unknown_tokens_warn(tokenizer):
    coverage = vocabulary_coverage(tokenizer, CHINESE)
    assert coverage.script == "CJK" and coverage.unit == "character"
    assert coverage.unknown_share > 0.05
    assert "unknown to the vocabulary" in coverage.problem()


def test_the_whole_check_finds_leaks_and_lengths_and_survives_a_round_trip(tokenizer):
    train = Examples(ENGLISH[:30], ["a", "b", "c"] * 10, "train.csv")
    test = Examples([*ENGLISH[:3], "something else entirely"], ["a", "b", "c", "a"], "test.csv")
    inspection = inspect_data([train, test], tokenizer, "packaged", max_length=12)
    assert inspection.leaks == [{"part": "test.csv", "other": "train.csv", "texts": 3, "of": 4}]
    assert inspection.token_lengths["max"] >= inspection.token_lengths["p50"] > 10
    assert 0 < inspection.truncated_share <= 1
    assert DataInspection.from_dict(inspection.to_dict()) == inspection
    printed = format_inspection(inspection)
    assert "leak: 3 texts of test.csv also appear in train.csv" in printed
    assert "warning" not in printed
    russian = inspect_data([Examples(RUSSIAN, ["a", "b", "c"] * 20, "ru.csv")], tokenizer, "packaged")
    assert russian.vocabulary_warning().startswith("warning: the tokenizer of packaged reads this Cyrillic text")
    assert russian.truncated_share is None
