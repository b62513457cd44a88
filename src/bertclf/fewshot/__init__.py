"""The low-label mode: for tens of labelled texts per class, contrastive tuning of the encoder on pairs of texts
(``pairs``, ``contrastive``), then a logistic-regression head fitted on the tuned vectors (``head``), one seed at a
time (``training``), when the rule on texts per class says so (``rule``). Its result is an ordinary network
(:class:`~bertclf.modeling.PooledClassifier`), so a low-label run saves, predicts, exports and serves as any other."""

from bertclf.fewshot.rule import settle, texts_per_class, with_label_name_texts
from bertclf.fewshot.training import Task, train_low_label

__all__ = ["Task", "settle", "texts_per_class", "train_low_label", "with_label_name_texts"]
