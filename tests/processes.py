"""Helpers for tests that run servers as real subprocesses."""

from __future__ import annotations

import socket
import subprocess
from typing import IO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, log: IO | None = None) -> None:
    """Terminate politely, kill if it does not exit, and close its log."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    if log is not None:
        log.close()
