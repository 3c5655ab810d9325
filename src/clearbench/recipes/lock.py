"""One ``clearbench run`` at a time per run folder: an exclusive lock on ``RUN_DIR/.lock``.

The lock is an ``flock`` on the file, so the system releases it when its holder ends however
it ends (killed included); the file records who holds it, for the message of the next run.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


class RunError(RuntimeError):
    """A run that cannot start or go on, for the reason its message names in full (its run
    folder in use, a failed or killed stage): the command line shows no traceback for it."""


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock (creating the folder) until the block ends; RunError naming
    the holder when another process holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / LOCK_FILE).open("a+") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.seek(0)
            raise RunError(f"{run_dir} is in use by clearbench run ({_holder(stream.read())}); "
                           "wait for it or stop it") from None
        stream.truncate(0)
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "command": shlex.join(sys.argv)}, stream)
        stream.flush()
        yield


def _holder(text: str) -> str:
    """``pid N on HOST since TIME: COMMAND`` from the lock file's record."""
    try:
        holder = json.loads(text)
        return (f"pid {holder['pid']} on {holder['host']} since {holder['since']}: "
                f"{holder['command']}")
    except (ValueError, KeyError, TypeError):  # the holder has not written its record yet
        return "a process that is starting"
