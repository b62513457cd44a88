from pathlib import Path

import pytest

from bertclf.config import DEFAULT_MODEL, ClassifierConfig, options_reference, read_config_file
from bertclf.errors import BertclfError


def test_defaults_are_valid_and_use_the_embedded_model():
    config = ClassifierConfig()
    assert config.model == DEFAULT_MODEL
    assert config.max_length == "auto"
    assert config.effective_head_learning_rate == pytest.approx(10 * config.learning_rate)
    assert config.pooling == "auto"
    # the head alone on a frozen encoder's fixed vectors takes larger steps, unless its rate is given
    assert ClassifierConfig(freeze_encoder=True).effective_head_learning_rate == pytest.approx(1e-2)
    assert ClassifierConfig(freeze_encoder=True, head_learning_rate=3e-3).effective_head_learning_rate == 3e-3


def test_strings_from_flags_and_files_are_coerced_to_field_types():
    config = ClassifierConfig(epochs="2", learning_rate="5e-5", max_length="128", columns="a,b,c",
                              text_column="body", overwrite="yes", patience="3")
    assert config.epochs == 2 and config.learning_rate == 5e-5 and config.max_length == 128
    assert config.columns == ["a", "b", "c"]
    assert config.text_column == ["body"]
    assert config.overwrite is True and config.patience == 3


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"pooling": "max"}, "choose one of auto, cls, mean"),
        ({"max_length": 4}, "max_length"),
        ({"val_size": 0.6, "test_size": 0.5}, "below 1"),
        ({"epochs": 1.5}, "integer"),
        ({"metric": "auc"}, "metric"),
    ],
)
def test_invalid_values_name_the_option(options, fragment):
    with pytest.raises(BertclfError, match=fragment):
        ClassifierConfig(**options)


def test_config_file_values_are_overridden_by_explicit_ones(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 5\nlearning-rate: 3.0e-5\ntext_column: [title, body]\n")
    config = ClassifierConfig.from_file(path, epochs=2)
    assert config.epochs == 2
    assert config.learning_rate == 3e-5
    assert config.text_column == ["title", "body"]


def test_unknown_keys_in_a_config_file_are_rejected_with_a_suggestion(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epoch: 5\n")
    with pytest.raises(BertclfError, match="did you mean 'epochs'"):
        read_config_file(path)


def test_saved_config_reloads_identically(tmp_path):
    config = ClassifierConfig(epochs=2, text_column=["title", "body"], max_length=64, text_separator=" | ")
    config.save(tmp_path / "bertclf.yaml")
    assert ClassifierConfig.from_file(tmp_path / "bertclf.yaml") == config


def test_missing_or_malformed_config_file(tmp_path):
    with pytest.raises(BertclfError, match="config file not found"):
        read_config_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(BertclfError, match="mapping"):
        read_config_file(bad)


def test_readme_option_reference_is_the_generated_one():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    embedded = readme.split("<!-- options:start -->\n", 1)[1].split("\n<!-- options:end -->", 1)[0]
    assert embedded == options_reference(), (
        "README options are stale: paste the output of "
        "python -c 'from bertclf.config import options_reference; print(options_reference())'"
    )


@pytest.mark.parametrize(
    ("options", "fragment"),
    [  # nan passes no comparison and inf every upper bound; each would fail deep in torch or scikit-learn
        ({"learning_rate": "nan"}, "invalid learning_rate .* must be a finite number"),
        ({"learning_rate": float("inf")}, "invalid learning_rate .* must be a finite number"),
        ({"head_learning_rate": "-inf"}, "invalid head_learning_rate .* must be a finite number"),
        ({"weight_decay": "nan"}, "invalid weight_decay .* must be a finite number"),
        ({"focal_gamma": "inf"}, "invalid focal_gamma .* must be a finite number"),
        ({"max_grad_norm": float("nan")}, "invalid max_grad_norm .* must be a finite number"),
        ({"epochs": "1e400"}, "invalid epochs .* must be a finite number"),
        ({"learning_rate": 10**400}, "invalid learning_rate .* must be a finite number"),
        ({"learning_rate": "1e308"}, "invalid learning_rate .* the head's rate"),  # 10x that is inf
        ({"batch_size": 2**63}, "invalid batch_size .* below 2\\*\\*63"),
        ({"seed": -1}, r"invalid seed .* \[0, 4294967295\]"),
        ({"seed": "4294967296"}, r"invalid seed .* \[0, 4294967295\]"),
        ({"seeds": "1,4294967296"}, r"invalid seeds .* \[0, 4294967295\]"),
        ({"seed": 4294967295, "seeds": "2"}, "invalid seeds .* at most 4294967295"),
    ],
)
def test_every_number_is_finite_and_in_the_range_the_libraries_take(options, fragment):
    with pytest.raises(BertclfError, match=fragment):
        ClassifierConfig(**options)


def test_numbers_at_the_edges_of_their_ranges_are_taken():
    assert ClassifierConfig(seed="4294967295").seed_list() == [4294967295]
    assert ClassifierConfig(seed=0, seeds="4294967294,4294967295").seed_list() == [4294967294, 4294967295]
    assert ClassifierConfig(epochs="9007199254740993").epochs == 9007199254740993  # exactly: a float rounds it
    assert ClassifierConfig(learning_rate=1e30).learning_rate == 1e30  # finite: a diverging loss stops the run


@pytest.mark.parametrize(("written", "mode"), [("off", "off"), ("on", "on"), ("'on'", "on"), ("auto", "auto")])
def test_an_unquoted_on_or_off_in_a_yaml_file_is_the_choice_not_a_boolean(tmp_path, written, mode):
    (tmp_path / "run.yaml").write_text(f"low_label: {written}\n")
    assert ClassifierConfig.from_file(tmp_path / "run.yaml").low_label == mode
