"""The one-line-per-event stderr log every test peer writes (see README.md)."""

import sys
import threading
import time

_lock = threading.Lock()


def _timestamp():
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def make_log(label):
    """A log function writing `HH:MM:SS.mmm [<label()>] message` lines to stderr."""

    def log(message):
        with _lock:
            try:
                sys.stderr.write(f"{_timestamp()} [{label()}] {message}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass  # stderr gone: the parent stopped listening, nothing to do

    return log
