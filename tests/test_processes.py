"""Where this process sits in a run of several, read from what torchrun and accelerate launch set."""

import pytest

from bertclf.processes import is_main_process, world_size


def test_a_process_launched_alone_is_the_only_and_main_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert world_size() == 1 and is_main_process()


@pytest.mark.parametrize(("rank", "main"), [("0", True), ("1", False), ("3", False)])
def test_a_launcher_sets_the_number_of_processes_and_the_first_is_the_main_one(monkeypatch, rank, main):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", rank)
    assert world_size() == 4 and is_main_process() is main
