"""The stop signals (SIGINT, SIGTERM) go to a handler for a block, and the handlers found come back after it."""

import signal
import threading

from bertclf.signals import STOP_SIGNALS, StopSignalHandler


def current_handlers():
    return {number: signal.getsignal(number) for number in STOP_SIGNALS}


def test_the_handler_receives_the_signals_inside_and_the_previous_handlers_come_back():
    before = current_handlers()
    received = []

    def handler(number, _frame):
        received.append(number)

    with StopSignalHandler(handler):
        assert all(installed is handler for installed in current_handlers().values())
        signal.raise_signal(signal.SIGTERM)
    assert received == [signal.SIGTERM]
    assert current_handlers() == before


def test_restore_puts_the_previous_handlers_back_before_the_block_ends():
    before = current_handlers()
    with StopSignalHandler(lambda number, frame: None) as stop:
        stop.restore()
        assert current_handlers() == before
    assert current_handlers() == before


def test_outside_the_main_thread_or_when_disabled_nothing_changes():
    before = current_handlers()
    seen = {}

    def in_a_thread():
        try:
            with StopSignalHandler(lambda number, frame: None) as stop:
                seen["enabled"], seen["handlers"] = stop.enabled, current_handlers()
        except ValueError as error:  # what signal.signal raises outside the main thread
            seen["error"] = error

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == {"enabled": False, "handlers": before}
    with StopSignalHandler(lambda number, frame: None, enabled=False):
        assert current_handlers() == before
