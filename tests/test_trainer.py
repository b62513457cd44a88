import copy
import itertools
import signal

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from bertclf.batching import PadBatch
from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError, Interrupted
from bertclf.inference import Predictor, TorchRuntime
from bertclf.modeling import build_model
from bertclf.training import (
    Checkpoints,
    TrainState,
    class_weights,
    fingerprint,
    is_better,
    loss_function,
    parameter_groups,
    train,
    train_step,
)
from bertclf.training import loop as training_loop
from tests.helpers import toy_set


def test_parameter_groups_split_head_rate_and_decay(tiny_model):
    config = ClassifierConfig(model=tiny_model, learning_rate=1e-4, head_learning_rate=5e-3, weight_decay=0.1)
    model = build_model(config, ["a", "b"])
    groups = parameter_groups(model, config)
    by_id = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert by_id[id(named["classifier.weight"])]["lr"] == 5e-3
    assert by_id[id(named["classifier.bias"])]["weight_decay"] == 0.0
    query = named["bert.encoder.layer.0.attention.self.query.weight"]
    encoder_group = by_id[id(query)]
    assert any(param is query for param in encoder_group["params"])
    assert encoder_group["lr"] == 1e-4 and encoder_group["weight_decay"] == 0.1
    assert by_id[id(named["bert.embeddings.LayerNorm.weight"])]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(named)


def test_is_better_respects_the_metric_direction():
    assert is_better(0.5, None, "f1_macro")
    assert is_better(0.6, 0.5, "accuracy") and not is_better(0.4, 0.5, "accuracy")
    assert is_better(0.4, 0.5, "loss") and not is_better(0.6, 0.5, "loss")


def accuracy_of(model, dataset):
    logits = Predictor(TorchRuntime(model), pad_token_id=0, batch_size=16).logits(dataset.token_ids)
    return float((logits.argmax(1) == dataset.labels).mean())


def test_training_learns_and_keeps_the_best_evaluation(tiny_model):
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=8, batch_size=8, learning_rate=3e-3,
                              head_learning_rate=3e-3, warmup_ratio=0.0, metric="accuracy", seed=1)
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
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=10, batch_size=16, patience=2, metric="accuracy")
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9, 0.9])
    _model, result = train(build_model(config, [0, 1]), toy_set(32), config, pad_token_id=0,
                          loss_fn=torch.nn.functional.cross_entropy,
                          evaluate=lambda candidate: {"accuracy": next(scores), "loss": 0.0})
    assert result.stopped_early
    assert [entry["accuracy"] for entry in result.history] == [0.5, 0.7, 0.6, 0.65]
    assert result.best_score == 0.7 and result.best_step == 4  # 2 steps per epoch, best after epoch 2


def test_a_tie_on_the_metric_goes_to_the_lower_validation_loss(tiny_model):
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=4, batch_size=16, metric="accuracy")
    evaluations = iter([(1.0, 0.6), (1.0, 0.3), (1.0, 0.4), (0.9, 0.1)])  # (accuracy, loss) per epoch
    _model, result = train(build_model(config, [0, 1]), toy_set(32), config, pad_token_id=0,
                           loss_fn=torch.nn.functional.cross_entropy,
                           evaluate=lambda candidate: dict(zip(("accuracy", "loss"), next(evaluations), strict=True)))
    assert result.best_step == 4 and result.best_metrics == {"accuracy": 1.0, "loss": 0.3}  # epoch 2 of 2 steps each


def test_eval_steps_evaluates_more_often(tiny_model):
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=2, batch_size=8, eval_steps=3)
    _model, result = train(build_model(config, [0, 1]), toy_set(48), config, pad_token_id=0,
                          loss_fn=torch.nn.functional.cross_entropy,
                          evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0})
    assert [entry["step"] for entry in result.history] == [3, 6, 9, 12]


def test_small_data_trains_for_min_steps_with_at_most_ten_evaluations(tiny_model):
    # 16 texts at batch 8 are 2 steps an epoch: 3 epochs would be 6 steps, so 25 epochs reach 50 steps
    config = ClassifierConfig(model=tiny_model, epochs=3, batch_size=8, min_steps=50)
    assert training_loop.planned_epochs(config, 2) == (25, 3)
    _model, result = train(build_model(config, [0, 1]), toy_set(16), config, pad_token_id=0,
                           loss_fn=torch.nn.functional.cross_entropy,
                           evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0})
    assert result.step == 50 and result.epoch == 25 and result.train_samples == 25 * 16
    assert [entry["step"] for entry in result.history] == [6, 12, 18, 24, 30, 36, 42, 48, 50]


def test_min_steps_leaves_data_that_reach_it_and_zero_leaves_everything_to_the_epochs(tiny_model):
    assert training_loop.planned_epochs(ClassifierConfig(model=tiny_model, epochs=3, min_steps=30), 10) == (3, 1)
    assert training_loop.planned_epochs(ClassifierConfig(model=tiny_model, epochs=3, min_steps=0), 1) == (3, 1)
    # more configured epochs than ten: an evaluation per --epochs' share of the grown run
    assert training_loop.planned_epochs(ClassifierConfig(model=tiny_model, epochs=20, min_steps=100), 1) == (100, 5)


def test_a_run_grown_to_min_steps_checkpoints_at_its_evaluations_and_resumes_exactly(tiny_model, tmp_path):
    config = ClassifierConfig(model=tiny_model, epochs=3, batch_size=8, min_steps=50, learning_rate=3e-3, seed=3)
    train_set = toy_set(16, seed=3)  # 2 steps an epoch: 25 epochs, evaluated every 3

    def run(folder, evaluate_hook=lambda: None):
        torch.manual_seed(0)
        checkpoints = None if folder is None else Checkpoints(folder, config, fingerprint(train_set))
        saved = []
        if checkpoints is not None:
            save = checkpoints.save
            checkpoints.save = lambda accelerator, state: (saved.append(state["step"]), save(accelerator, state))
        model, _ = train(build_model(config, [0, 1]), train_set, config, pad_token_id=0,
                         loss_fn=torch.nn.functional.cross_entropy, checkpoints=checkpoints,
                         evaluate=lambda candidate: (evaluate_hook(), {"f1_macro": 0.5, "loss": 0.0})[1])
        return model, saved

    whole, _ = run(None)
    _, saved = run(tmp_path / "all")
    assert saved == [6, 12, 18, 24, 30, 36, 42, 48]  # after every third epoch, not after each of 25
    interrupts = iter([True])
    with pytest.raises(Interrupted):
        run(tmp_path / "run", lambda: next(interrupts, False) and signal.raise_signal(signal.SIGINT))
    assert [path.name for path in (tmp_path / "run" / "checkpoints").iterdir()] == ["step-00000006"]
    resumed, _ = run(tmp_path / "run")
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_gradient_accumulation_counts_optimizer_steps(tiny_model):
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=1, batch_size=8, gradient_accumulation_steps=2,
                              eval_steps=2)
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


def test_the_training_step_on_chunked_texts_in_parts_gives_the_whole_batchs_update(tiny_model):
    """train_step cuts a batch of chunked texts into parts of at most batch_size windows; weighted by their share
    of texts, the parts' gradients add up to the whole batch's, so the update is the one the whole batch gives."""
    config = ClassifierConfig(model=tiny_model, long_text="chunks", batch_size=4, max_grad_norm=0)
    model = build_model(config, [0, 1]).eval()  # no dropout: the two ways must match exactly
    reference = copy.deepcopy(model)
    items = [([[101, 2000 + i, 102]] * (i % 3 + 1), np.int64(i % 2)) for i in range(6)]  # 12 windows: 3+ parts
    batch = PadBatch(pad_token_id=0)(items)
    loss_fn = loss_function(multilabel=False)

    accelerator = Accelerator()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # the update is minus the gradient
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
    prepared, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    loss = train_step(prepared, dict(batch), optimizer, scheduler, accelerator, loss_fn, config)

    whole = dict(batch)
    labels = whole.pop("labels")
    expected_loss = loss_fn(reference(**whole).logits, labels)
    expected_loss.backward()
    torch.testing.assert_close(loss, expected_loss.detach(), atol=1e-6, rtol=1e-5)
    for (name, before), after in zip(reference.named_parameters(), model.parameters(), strict=True):
        expected = before.detach() - (before.grad if before.grad is not None else 0)
        torch.testing.assert_close(after.detach(), expected, atol=1e-6, rtol=1e-4, msg=name)


def test_the_train_state_survives_a_checkpoint_as_json():
    state = TrainState(epoch=1, epoch_batches=3, epoch_loss=torch.tensor(1.25), step=7,
                       history=[{"step": 4, "accuracy": 0.5}], best_step=4, best_score=0.5,
                       best_metrics={"accuracy": 0.5}, evaluations_without_gain=1, train_seconds=2.5,
                       train_samples=56)
    restored = TrainState.from_dict(state.to_dict())
    assert restored.to_dict() == state.to_dict() and restored.mean_epoch_loss == pytest.approx(1.25 / 3)


def _resumable_run(tiny_model, folder, evaluate_hook=None):
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=3, batch_size=8, eval_steps=3, save_steps=2,
                              learning_rate=3e-3, metric="accuracy", seed=1)
    torch.manual_seed(1)
    model = build_model(config, [0, 1])
    train_set, val_set = toy_set(64, seed=1), toy_set(16, seed=2)

    def evaluate(candidate):
        if evaluate_hook:
            evaluate_hook()
        score = accuracy_of(candidate, val_set)
        return {"accuracy": score, "loss": 1 - score}

    checkpoints = None if folder is None else Checkpoints(folder, config, fingerprint(train_set))
    return train(model, train_set, config, pad_token_id=0, loss_fn=torch.nn.functional.cross_entropy,
                 evaluate=evaluate, checkpoints=checkpoints)


def test_an_interrupted_run_checkpoints_and_resumes_to_the_same_weights(tiny_model, tmp_path):
    plain_model, plain = _resumable_run(tiny_model, None)
    interrupts = iter([True])  # SIGINT arrives during the first evaluation, at step 3 of 24 (mid-epoch)
    with pytest.raises(Interrupted) as stopped:
        _resumable_run(tiny_model, tmp_path / "run", lambda: next(interrupts, False) and
                       signal.raise_signal(signal.SIGINT))
    assert stopped.value.signal_number == signal.SIGINT and stopped.value.checkpoint == str(tmp_path / "run")
    assert [path.name for path in (tmp_path / "run" / "checkpoints").iterdir()] == ["step-00000003"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler it found is back

    resumed_model, resumed = _resumable_run(tiny_model, tmp_path / "run")
    assert resumed.history == plain.history and resumed.best_step == plain.best_step
    for (name, expected), got in zip(plain_model.state_dict().items(), resumed_model.state_dict().values(),
                                     strict=True):
        assert torch.equal(expected, got), name
    assert len(list((tmp_path / "run" / "checkpoints").iterdir())) == 1  # save_total_limit 1


def test_a_diverging_loss_stops_the_run_with_one_error(tiny_model):
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=2, batch_size=8,
                              learning_rate=1e30)  # finite, far too high
    with pytest.raises(BertclfError, match=r"^the training loss diverged \(nan\) by step \d+: train with a lower "
                                           r"--learning-rate \(this run's: 1e\+30\)$"):
        train(build_model(config, [0, 1]), toy_set(32), config, pad_token_id=0,
              loss_fn=torch.nn.functional.cross_entropy, evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0})


@pytest.mark.parametrize("log_points", [training_loop.LOG_POINTS, 1])  # 1: the divergence falls between log entries
def test_a_diverged_loss_is_never_checkpointed_nor_evaluated(tiny_model, tmp_path, monkeypatch, log_points):
    monkeypatch.setattr(training_loop, "LOG_POINTS", log_points)
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=2, batch_size=8, save_steps=1, save_total_limit=10,
                              eval_steps=1)
    batches = itertools.count()
    evaluated = []

    def loss_fn(logits, labels):  # nan from the 4th batch on, as a too high learning rate makes it
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return loss * float("nan") if next(batches) >= 3 else loss

    def evaluate(candidate):
        evaluated.append(all(torch.isfinite(tensor).all() for tensor in candidate.state_dict().values()))
        return {"f1_macro": 0.5, "loss": 0.0}

    train_set = toy_set(32)
    with pytest.raises(BertclfError, match=r"diverged \(nan\) by step 4: .* the last checkpoint before it is kept in"):
        train(build_model(config, [0, 1]), train_set, config, pad_token_id=0, loss_fn=loss_fn, evaluate=evaluate,
              checkpoints=Checkpoints(tmp_path, config, fingerprint(train_set)))
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == [
        "step-00000001", "step-00000002", "step-00000003"]
    assert evaluated == [True, True, True]


def test_a_diverged_run_goes_on_from_its_last_checkpoint_at_a_lower_rate(tiny_model, tmp_path):
    """The divergence names the resume command; resumed at a lower rate, each step's rate is a fresh run's at that
    rate (the schedule keeps its place), where the checkpoint's own schedule would have gone on at the old one."""
    options = {"model": tiny_model, "epochs": 3, "min_steps": 0, "batch_size": 8, "save_steps": 2, "eval_steps": 2,
               "seed": 1, "learning_rate": 1e-3, "head_learning_rate": 1e-2, "warmup_ratio": 0.25}
    train_set, batches = toy_set(32), itertools.count()

    def loss_fn(logits, labels):  # nan from the 5th batch on: the run diverges after its checkpoint at step 4
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return loss * float("nan") if next(batches) >= 4 else loss

    def run(config, loss, rates=None):
        torch.manual_seed(1)
        original = training_loop.train_step

        def recorded_step(model, batch, optimizer, *rest):
            if rates is not None:
                rates.append([group["lr"] for group in optimizer.param_groups])
            return original(model, batch, optimizer, *rest)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(training_loop, "train_step", recorded_step)
            return train(build_model(config, [0, 1]), train_set, config, pad_token_id=0, loss_fn=loss,
                         evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0},
                         checkpoints=Checkpoints(tmp_path / "run", config, fingerprint(train_set)))

    config = ClassifierConfig(**options)
    with pytest.raises(BertclfError, match=rf"kept in {tmp_path / 'run'}: go on from it at a lower rate with  "
                                           rf"bertclf train --resume {tmp_path / 'run'} --learning-rate 0\.0001$"):
        run(config, loss_fn)
    lower = ClassifierConfig(**{**options, "learning_rate": 1e-4, "head_learning_rate": 1e-3})
    assert lower.changes_on_resume(config) == []
    resumed_rates, fresh_rates = [], []
    run(lower, torch.nn.functional.cross_entropy, resumed_rates)
    (tmp_path / "run").rename(tmp_path / "diverged")
    run(lower, torch.nn.functional.cross_entropy, fresh_rates)
    assert len(resumed_rates) == 8 and resumed_rates == fresh_rates[4:]  # the steps after the checkpoint at step 4


def test_layer_decay_gives_each_layer_below_the_top_a_smaller_rate(tiny_model):
    config = ClassifierConfig(model=tiny_model, learning_rate=1e-3, head_learning_rate=1e-2, layer_decay=0.5)
    model = build_model(config, ["a", "b"])
    rate = {id(p): group["lr"] for group in parameter_groups(model, config) for p in group["params"]}
    named = dict(model.named_parameters())
    # two layers: layer 1 (the top) at the full rate, layer 0 at half, the embeddings at a quarter
    assert rate[id(named["bert.encoder.layer.1.output.dense.weight"])] == pytest.approx(1e-3)
    assert rate[id(named["bert.encoder.layer.0.output.dense.weight"])] == pytest.approx(5e-4)
    assert rate[id(named["bert.embeddings.word_embeddings.weight"])] == pytest.approx(2.5e-4)
    assert rate[id(named["classifier.weight"])] == pytest.approx(1e-2)
    assert rate[id(named["bert.pooler.dense.weight"])] == pytest.approx(1e-2)  # the pooler learns as the head


def test_focal_loss_weighs_down_what_is_already_right_and_is_cross_entropy_at_gamma_zero():
    logits = torch.tensor([[4.0, -1.0], [0.2, 0.0], [-1.0, 1.0]])
    targets = torch.tensor([0, 0, 0])
    plain = loss_function(False)(logits, targets)
    torch.testing.assert_close(loss_function(False, kind="focal", gamma=0.0)(logits, targets), plain)
    per_text = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    right = torch.softmax(logits, dim=-1)[:, 0]
    torch.testing.assert_close(loss_function(False, kind="focal", gamma=2.0)(logits, targets),
                               ((1 - right) ** 2 * per_text).mean())
    weights = torch.tensor([2.0, 1.0])
    torch.testing.assert_close(loss_function(False, weights, kind="focal", gamma=0.0)(logits, targets),
                               torch.nn.functional.cross_entropy(logits, targets, weight=weights))
    matrix = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(loss_function(True, kind="focal", gamma=0.0)(logits, matrix),
                               torch.nn.functional.binary_cross_entropy_with_logits(logits, matrix))
    assert loss_function(True, kind="focal", gamma=2.0)(logits, matrix) < loss_function(True)(logits, matrix)


def test_label_smoothing_is_cross_entropy_against_smoothed_targets():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    smoothed = torch.tensor([[0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3]])
    expected = -(smoothed * torch.log_softmax(logits, dim=-1)).sum()
    torch.testing.assert_close(loss_function(False, label_smoothing=0.1)(logits, torch.tensor([0])), expected)


def test_the_encoder_learns_only_after_the_frozen_epochs(tiny_model):
    config = ClassifierConfig(model=tiny_model, min_steps=0, epochs=2, freeze_epochs=1, batch_size=16,
                              learning_rate=1e-3, warmup_ratio=0.0)
    model = build_model(config, [0, 1])
    start = copy.deepcopy(model.state_dict())
    snapshots = []

    def evaluate(trained):
        snapshots.append(copy.deepcopy(trained.state_dict()))
        return {"f1_macro": float(len(snapshots)), "loss": 0.0}

    train(model, toy_set(), config, pad_token_id=0, loss_fn=loss_function(False), evaluate=evaluate)
    name = "bert.encoder.layer.0.output.dense.weight"
    assert torch.equal(snapshots[0][name], start[name])  # epoch 1: the head alone
    assert not torch.equal(snapshots[0]["classifier.weight"], start["classifier.weight"])
    assert not torch.equal(snapshots[1][name], start[name])  # epoch 2: everything
