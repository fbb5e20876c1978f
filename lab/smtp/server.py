"""A host's SMTP listener on its own loopback address.

The listener follows the host's raw state. ``refresh()`` (called by the lab
after any state change) re-derives whether port 25 is refused (service
stopped: nothing bound), filtered (Windows Firewall without TCP 25: a
Blackhole on the same address and port) or normal (a real SMTP server).
In normal mode each connection gets a SessionProfile computed from state at
connect time, so a metabase edit or a firewall config change on the path is
seen by the next session without a refresh.
"""
from __future__ import annotations

import socket
import threading
from datetime import datetime, timezone

from lab.runtime import Metrics
from lab.smtp.behaviour import ListenMode, listen_mode, session_profile
from lab.smtp.blackhole import Blackhole
from lab.smtp.session import Greylist, SmtpSession
from lab.state import FleetState

ACCEPT_BACKLOG = 64


class SmtpListener:
    def __init__(self, fleet: FleetState, metrics: Metrics, host_name: str, delivery=None) -> None:
        """delivery: the lab's DeliveryEngine (lab/smtp/delivery.py), told when mail arrives and asked which
        sessions are its own (counted as delivery_sessions, not smtp_sessions)."""
        self.fleet = fleet
        self.metrics = metrics
        self.host_name = host_name
        self.delivery = delivery
        # Greylisting memory is the peer software's runtime state, not
        # Windows state: it survives refreshes but not a new listener.
        self.greylist = Greylist(getattr(fleet, "time_factor", 1.0))
        self._started = False
        self._lock = threading.Lock()  # serialises start/stop/refresh
        self._mode: ListenMode | None = None
        self._bound: tuple[str, int] | None = None
        self._server: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._blackhole: Blackhole | None = None
        self._sessions: set[socket.socket] = set()
        self._sessions_lock = threading.Lock()

    @property
    def mode(self) -> ListenMode | None:
        """The current listen mode; None while stopped."""
        return self._mode

    def start(self) -> None:
        with self._lock:
            self._started = True
        self.refresh()

    def stop(self) -> None:
        with self._lock:
            self._started = False
            self._tear_down()

    def refresh(self) -> None:
        with self.fleet.lock:
            host = self.fleet.host(self.host_name)
            mode = listen_mode(host)
            endpoint = (host.address, int(host.ports.get("smtp", 25)))
        with self._lock:
            if not self._started or (mode, endpoint) == (self._mode, self._bound):
                return
            self._tear_down()
            self._bring_up(mode, endpoint)

    # -- mode transitions (under self._lock)
    def _bring_up(self, mode: ListenMode, endpoint: tuple[str, int]) -> None:
        if mode is ListenMode.FILTERED:
            self._blackhole = Blackhole(*endpoint).start()
        elif mode is ListenMode.NORMAL:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                server.bind(endpoint)
                server.listen(ACCEPT_BACKLOG)
            except OSError:
                server.close()
                raise
            self._server = server
            self._accept_thread = threading.Thread(
                target=self._accept_loop, args=(server,), name=f"smtp-{self.host_name}", daemon=True)
            self._accept_thread.start()
        self._mode, self._bound = mode, endpoint

    def _tear_down(self) -> None:
        if self._blackhole is not None:
            self._blackhole.stop()
            self._blackhole = None
        if self._server is not None:
            try:
                # On Linux, shutdown() wakes a thread blocked in accept().
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2)
            self._accept_thread = None
        # A stopped service or a new firewall rule ends live sessions too.
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, set()
        for conn in sessions:
            _close(conn)
        self._mode = self._bound = None

    # -- serving
    def _accept_loop(self, server: socket.socket) -> None:
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return  # listener closed
            own = self.delivery is not None and self.delivery.is_delivery(peer)
            self.metrics.bump(self.host_name, "delivery_sessions" if own else "smtp_sessions")
            with self._sessions_lock:
                self._sessions.add(conn)
            threading.Thread(target=self._serve, args=(conn, peer[0]),
                             name=f"smtp-{self.host_name}-{peer[0]}:{peer[1]}", daemon=True).start()

    def _serve(self, conn: socket.socket, client_ip: str) -> None:
        try:
            with self.fleet.lock:
                host = self.fleet.host(self.host_name)
                profile = session_profile(self.fleet, host, client_ip)
            SmtpSession(conn, client_ip, profile, self.greylist, self._store(profile.queue_dir)).run()
        finally:
            with self._sessions_lock:
                self._sessions.discard(conn)
            _close(conn)

    def _store(self, queue_dir: str):
        def deliver(file_name: str, message: bytes) -> None:
            mtime = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            with self.fleet.lock:
                host = self.fleet.host(self.host_name)
                host.files.write(queue_dir.rstrip("\\") + "\\" + file_name, message, mtime)
            if self.delivery is not None:
                self.delivery.notify(self.host_name)  # SMTP takes up what it has just queued
        return deliver


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
