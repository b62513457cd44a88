"""When the low-label mode applies, and what it changes in a run's options: the rule of ``--low-label auto`` on the
training texts per class, no part held out of so few texts, and the texts made from class names."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

from bertclf.config import LOW_LABEL_TEXTS, LOW_LABEL_TEXTS_PER_CLASS, ClassifierConfig
from bertclf.data import Examples

log = logging.getLogger("bertclf")

# Texts made from a class name (--label-name-texts), taken in turn.
NAME_TEMPLATES = ("{}", "a text about {}", "this is about {}", "it is {}", "{}.", "the topic is {}", "about {}",
                  "something {}")


def texts_per_class(examples: Examples) -> float:
    """Training texts per class on average (multilabel: texts per label, a text counting for each of its labels)."""
    counts = Counter(examples.label_values())
    return sum(counts.values()) / max(len(counts), 1)


def settle(config: ClassifierConfig, examples: Examples, val_given: bool, test_given: bool) -> ClassifierConfig:
    """``low_label`` made 'on' or 'off' by the rule (see the option's help); in the mode no validation or test part is
    held out of the training texts (validation is then out of fold), and a line says so."""
    average = texts_per_class(examples)
    few = average <= LOW_LABEL_TEXTS_PER_CLASS or len(examples.texts) <= LOW_LABEL_TEXTS
    on = config.low_label == "on" or (config.low_label == "auto" and config.long_text != "chunks"
                                      and config.head == "linear" and few)
    if not on:
        return dataclasses.replace(config, low_label="off")
    where = "on the validation texts" if val_given else "out of fold on the training texts (5 folds)"
    log.info("low-label mode (%d training texts, %.1f per %s on average%s): contrastive tuning, then a "
             "logistic-regression head; nothing held out, validation %s (--low-label off: a fine-tune)",
             len(examples.texts), average, "label" if examples.multilabel else "class",
             f"; at most {LOW_LABEL_TEXTS} or {LOW_LABEL_TEXTS_PER_CLASS} per class" if config.low_label == "auto"
             else "", where)
    return dataclasses.replace(config, low_label="on", val_size=0.0 if not val_given else config.val_size,
                               test_size=0.0 if not test_given else config.test_size)


def with_label_name_texts(examples: Examples, count: int) -> Examples:
    """The training texts and ``count`` texts per class made from its name (a label's name, for multilabel data)."""
    if not count:
        return examples
    classes = sorted({str(label): label for label in examples.label_values()}.items())
    texts, labels = list(examples.texts), list(examples.labels)
    for name, label in classes:
        for index in range(count):
            texts.append(NAME_TEMPLATES[index % len(NAME_TEMPLATES)].format(name))
            labels.append((label,) if examples.multilabel else label)
    log.info("added %d texts made from the %d class names", count * len(classes), len(classes))
    return dataclasses.replace(examples, texts=texts, labels=labels)
