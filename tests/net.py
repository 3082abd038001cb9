"""Network helpers for the servers tests start: a free port (never a fixed one), a wait until listening."""

from __future__ import annotations

import contextlib
import socket
import time


def free_port() -> int:
    """A port nobody listens on right now (bound to port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, *, process=None, timeout: float = 20, name: str = "the server") -> None:
    """Return once 127.0.0.1:`port` accepts connections; raise if `process` exits first or after `timeout`
    seconds (waiting for a process to listen, not for a clock)."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start listening within {timeout:g} s")
        time.sleep(0.05)
