"""Progress of a long job over texts (training, prediction): a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import time

from tqdm.auto import tqdm

log = logging.getLogger("bertclf")


class Progress:
    """A tqdm bar (texts, speed, ETA and the job's own figures) on a terminal; elsewhere, such as a log file or CI,
    a plain progress line every ``LOG_EVERY_SECONDS``, so long runs are never silent."""

    LOG_EVERY_SECONDS = 60.0

    def __init__(self, what: str, total: int | None, enabled: bool = True):
        self.what = what
        self.bar = tqdm(total=total, desc=what, unit="text", dynamic_ncols=True,
                        disable=None if enabled else True)  # None: a bar only when stderr is a terminal
        self.enabled = enabled  # False on all but the first process of a distributed run
        self.logging = enabled and self.bar.disable
        self.total, self.done = total, 0
        self.started = self.last_line = time.perf_counter()

    def update(self, texts: int) -> None:
        self.bar.update(texts)
        self.done += texts

    def due(self, step: int) -> bool:
        """Whether to show the figures at this step (reading them may wait for the device, so not at every one):
        every 10th step beside the bar, once ``LOG_EVERY_SECONDS`` have passed in the log."""
        if self.logging:
            return time.perf_counter() - self.last_line >= self.LOG_EVERY_SECONDS
        return not self.bar.disable and step % 10 == 0

    def show(self, **figures: str) -> None:
        """``figures`` (name: formatted value) beside the bar; in the log, a line with the texts done, the figures,
        the speed and the time left."""
        if not self.logging:
            if figures:
                self.bar.set_postfix(**figures)
            return
        self.last_line = time.perf_counter()
        speed = self.done / (self.last_line - self.started)
        done = f"{self.done}/{self.total} texts ({100 * self.done / self.total:.0f}%)" if self.total \
            else f"{self.done} texts"
        shown = "".join(f", {name} {value}" for name, value in figures.items())
        left = f", about {(self.total - self.done) / speed:.0f} s left" if self.total and 0 < self.done < self.total \
            else ""
        log.info("%s: %s%s, %.1f texts/s%s", self.what, done, shown, speed, left)

    def write(self, line: str) -> None:
        """A line above the bar, or a log line when there is no bar."""
        if not self.enabled:
            return
        if self.bar.disable:
            log.info(line)
        else:
            self.bar.write(line)

    def close(self) -> None:
        self.bar.close()
