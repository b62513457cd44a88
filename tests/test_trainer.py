import numpy as np
import torch

from bertclf.batching import EncodedTexts, PadBatch, split_batch
from bertclf.config import ClassifierConfig
from bertclf.inference import Predictor, TorchRuntime
from bertclf.modeling import build_model
from bertclf.trainer import class_weights, is_better, loss_function, parameter_groups, train


def test_parameter_groups_split_head_rate_and_decay(tiny_model):
    config = ClassifierConfig(model=tiny_model, learning_rate=1e-4, head_learning_rate=5e-3, weight_decay=0.1)
    model = build_model(config, ["a", "b"])
    groups = parameter_groups(model, config)
    by_id = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert by_id[id(named["classifier.weight"])]["lr"] == 5e-3
    assert by_id[id(named["classifier.bias"])]["weight_decay"] == 0.0
    assert by_id[id(named["bert.encoder.layer.0.attention.self.query.weight"])] == {
        "params": by_id[id(named["bert.encoder.layer.0.attention.self.query.weight"])]["params"],
        "lr": 1e-4, "weight_decay": 0.1,
    }
    assert by_id[id(named["bert.embeddings.LayerNorm.weight"])]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(named)


def test_is_better_respects_the_metric_direction():
    assert is_better(0.5, None, "f1_macro")
    assert is_better(0.6, 0.5, "accuracy") and not is_better(0.4, 0.5, "accuracy")
    assert is_better(0.4, 0.5, "loss") and not is_better(0.6, 0.5, "loss")


def toy_set(count=64, seed=0):
    """Label 1 iff token 2000 appears: learnable by the tiny model in a few epochs."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(count):
        body = rng.integers(3000, 3100, size=rng.integers(3, 12)).tolist()
        label = int(rng.integers(0, 2))
        if label:
            body[rng.integers(0, len(body))] = 2000
        ids.append([101, *body, 102])
        labels.append(label)
    return EncodedTexts(ids, np.array(labels))


def accuracy_of(model, dataset):
    logits = Predictor(TorchRuntime(model), pad_token_id=0, batch_size=16).logits(dataset.token_ids)
    return float((logits.argmax(1) == dataset.labels).mean())


def test_training_learns_and_keeps_the_best_evaluation(tiny_model):
    config = ClassifierConfig(model=tiny_model, epochs=8, batch_size=8, learning_rate=3e-3, head_learning_rate=3e-3,
                              warmup_ratio=0.0, metric="accuracy", seed=1)
    torch.manual_seed(1)
    model = build_model(config, [0, 1])
    train_set, val_set = toy_set(160, seed=1), toy_set(40, seed=2)
    scores = []

    def evaluate(candidate):
        scores.append(accuracy_of(candidate, val_set))
        return {"accuracy": scores[-1], "loss": 1 - scores[-1]}

    model, result = train(model, train_set, config, pad_token_id=0, loss_fn=torch.nn.functional.cross_entropy,
                          evaluate=evaluate)
    assert len(result.history) == 8
    assert result.best_score == max(scores) >= 0.8
    assert accuracy_of(model, val_set) == result.best_score  # the best weights were restored
    assert result.train_samples == 8 * 160


def test_early_stopping_after_patience_evaluations(tiny_model):
    config = ClassifierConfig(model=tiny_model, epochs=10, batch_size=16, patience=2, metric="accuracy")
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9, 0.9])
    _model, result = train(build_model(config, [0, 1]), toy_set(32), config, pad_token_id=0,
                          loss_fn=torch.nn.functional.cross_entropy,
                          evaluate=lambda candidate: {"accuracy": next(scores), "loss": 0.0})
    assert result.stopped_early
    assert [entry["accuracy"] for entry in result.history] == [0.5, 0.7, 0.6, 0.65]
    assert result.best_score == 0.7 and result.best_step == 4  # 2 steps per epoch, best after epoch 2


def test_eval_steps_evaluates_more_often(tiny_model):
    config = ClassifierConfig(model=tiny_model, epochs=2, batch_size=8, eval_steps=3)
    _model, result = train(build_model(config, [0, 1]), toy_set(48), config, pad_token_id=0,
                          loss_fn=torch.nn.functional.cross_entropy,
                          evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0})
    assert [entry["step"] for entry in result.history] == [3, 6, 9, 12]


def test_gradient_accumulation_counts_optimizer_steps(tiny_model):
    config = ClassifierConfig(model=tiny_model, epochs=1, batch_size=8, gradient_accumulation_steps=2, eval_steps=2)
    _model, result = train(build_model(config, [0, 1]), toy_set(64), config, pad_token_id=0,
                          loss_fn=torch.nn.functional.cross_entropy,
                          evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0})
    assert [entry["step"] for entry in result.history] == [2, 4]


def test_class_weights_from_label_frequencies():
    assert class_weights(np.array([0, 0, 0, 1]), 3, "none") is None
    # multiclass: n / (classes x count); a class without examples keeps weight 1
    torch.testing.assert_close(class_weights(np.array([0, 0, 0, 1]), 3, "balanced"),
                               torch.tensor([4 / 9, 4 / 3, 1.0]))
    torch.testing.assert_close(class_weights(np.array([0, 0, 0, 1]), 3, "sqrt"),
                               torch.tensor([2 / 3, (4 / 3) ** 0.5, 1.0]))
    # multilabel: negatives / positives per label
    matrix = np.array([[1, 0], [1, 1], [1, 0], [0, 0]], dtype=np.float32)
    torch.testing.assert_close(class_weights(matrix, 2, "balanced"), torch.tensor([1 / 3, 3.0]))
    # a label on every text or on none keeps weight 1
    torch.testing.assert_close(class_weights(np.array([[1, 0], [1, 0]]), 2, "balanced"), torch.tensor([1.0, 1.0]))


def test_loss_function_follows_the_task():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    single = loss_function(multilabel=False)
    torch.testing.assert_close(single(logits, torch.tensor([0, 1])),
                               torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    multi = loss_function(True, class_weights(targets.numpy(), 2, "balanced"))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=torch.tensor([1.0,
                                                                                                             1.0]))
    torch.testing.assert_close(multi(logits, targets), expected)


def test_chunked_batches_split_into_parts_give_the_whole_batchs_gradient(tiny_model):
    """The training step's arithmetic: parts weighted by their share of texts add up to the whole batch."""
    config = ClassifierConfig(model=tiny_model, long_text="chunks")
    model = build_model(config, [0, 1]).eval()  # no dropout: the two ways must match exactly
    items = [([[101, 2000 + i, 102]] * (i % 3 + 1), np.int64(i % 2)) for i in range(6)]
    batch = PadBatch(pad_token_id=0)(items)
    loss_fn = loss_function(multilabel=False)

    def gradients(parts):
        model.zero_grad()
        for part in parts:
            part = dict(part)
            labels = part.pop("labels")
            (loss_fn(model(**part).logits, labels) * len(labels) / len(batch["labels"])).backward()
        return [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]

    whole = gradients([batch])
    parts = split_batch(batch, max_windows=4)
    assert len(parts) > 2
    for expected, got in zip(whole, gradients(parts), strict=True):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-4)
