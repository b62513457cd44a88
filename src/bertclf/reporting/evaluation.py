"""A labelled part's predictions, which the report's figures and tables are drawn from (the run's test part, or a
labelled file given to ``bertclf report RUN --data FILE``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bertclf.errors import BertclfError


@dataclass
class Evaluation:
    """A labelled part's predictions: labels are class indices, or a 0/1 matrix (texts x classes) for multilabel."""

    name: str
    texts: list[str]
    labels: np.ndarray
    probabilities: np.ndarray

    def save(self, path: Path) -> None:
        pd.DataFrame({"text": self.texts, "label": list(self.labels.astype(np.int64)),
                      "probabilities": list(self.probabilities.astype(np.float32))}).to_parquet(path, index=False)

    @classmethod
    def load(cls, path: Path, name: str = "test") -> Evaluation:
        try:
            frame = pd.read_parquet(path)
            return cls(name, frame["text"].tolist(), np.stack(frame["label"].to_numpy()),
                       np.stack(frame["probabilities"].to_numpy()).astype(np.float64))
        except Exception:  # pyarrow's errors for a damaged file have no common base
            raise BertclfError(f"{path} is corrupt (run 'bertclf report RUN --data FILE' to score a labelled file "
                               "instead)") from None
