"""A TCP endpoint that never answers a SYN: what a firewall that drops packets looks like.

The lab has no packet filter to program (tests run unprivileged on loopback),
so a "filtered" port is made from the kernel's own overflow behaviour: a
listening socket with a backlog of 0 whose single accept-queue slot is taken
by a filler connection that is never accepted. While the accept queue is
full, Linux drops every further SYN without a reply (counted as
TcpExtListenOverflows / ListenDrops), so a client's connect() retransmits
its SYN and finally times out -- neither refused nor accepted.
"""
from __future__ import annotations

import socket
import threading


class Blackhole:
    """A filtered endpoint on address:port (port 0 picks a free one)."""

    def __init__(self, address: str, port: int = 0) -> None:
        self.address = address
        self.port = port
        self._listener: socket.socket | None = None
        self._filler: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> "Blackhole":
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self.address, self.port))
                # Backlog 0 leaves room for exactly one established connection.
                listener.listen(0)
                self.port = listener.getsockname()[1]
                # The filler completes its handshake before any client can
                # try, so it is the connection that occupies the only slot.
                filler = socket.create_connection((self.address, self.port), timeout=2)
            except OSError:
                listener.close()
                raise
            self._listener, self._filler = listener, filler
        return self

    def stop(self) -> None:
        with self._lock:
            for sock in (self._filler, self._listener):
                if sock is not None:
                    sock.close()
            self._listener = self._filler = None

    @property
    def running(self) -> bool:
        return self._listener is not None

    def __enter__(self) -> "Blackhole":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
