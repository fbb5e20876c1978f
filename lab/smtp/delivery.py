"""Mail flow in the lab: each host's SMTP service delivers what sits in its queue folder.

Exchange 2003 servers and Windows SMTP relays (hosts with a running SMTPSVC
whose MetaBase.xml parses; with a corrupt metabase the virtual server is not
loaded and sends nothing) hand the ``.EML`` files of their virtual server's
QueueDirectory to the next hop (lab/smtp/routing.py) as SMTP clients of the
lab's own listeners (lab/smtp/client.py), on the SMTP service's retry
schedule compressed by the lab's time factor (lab/smtp/schedule.py):

- When SMTP starts (the lab starting counts, as does any restart of SMTPSVC)
  it reads its queue folder and tries every next hop at once, with
  GlitchRetrySeconds as it stands at that start.
- A 4xx reply is a "glitch": retried GlitchRetrySeconds later, three times;
  then the message waits for the link's next retry. Any other failure puts
  the link in Retry at once: first, second, third, then subsequent retry
  interval after each failed attempt. Success ends the retry state.
- A message older than the expiration timeout leaves the queue for the
  BadMail folder as ``<name>.BAD`` (the NDR to the sender is not modelled).
- Delivered: the file leaves the sender's queue folder; the receiving
  listener has already written it to its own queue folder (lab/smtp/server.py),
  where that host's engine takes it up: a recipient whose mailbox is on that
  Exchange server is delivered to its store, which the lab keeps as
  ``<Exchsrvr>\\mdbdata\\Mailbox Store (<SERVER>)\\<alias>\\`` (a stand-in for
  priv1.edb that no snapshot reads); a Windows SMTP relay drops mail for
  itself into its DropDirectory; anything else is relayed onward from the
  queue folder.
- Exchange senders show their links as Exchange_SMTPLink/Exchange_SMTPQueue
  and log Event 4006 (lab/smtp/links.py).

One scheduler thread sleeps until the next attempt is due, or until a host
receives mail or a service changes; with nothing queued it waits without a
timeout. Each attempt runs on a thread of its own and the lab's stop closes
their sockets. Delivery sessions are counted apart from WinRM commands and
from other SMTP sessions: ``delivery_attempts`` and ``messages_delivered`` on
the sender, ``delivery_sessions`` on the receiver (lab/runtime.py).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from lab.runtime import Metrics
from lab.smtp import client, links, routing, sender
from lab.smtp.behaviour import IIS_SMTP_SERVICE, is_exchange_55, read_metabase, vs_directory, vs_property
from lab.smtp.blackhole import Blackhole
from lab.smtp.schedule import (CONNECT_TIMEOUT_SECONDS, OUTBOUND_TIMEOUT_SECONDS, LabClock, RetrySchedule,
                               glitch_retry_seconds, iso, parse_iso, schedule_for)
from lab.state import FleetState, HostState

SMTP_PORT = 25
_NEVER = float("inf")  # the due time of a link whose SMTP service is not running


@dataclass
class Message:
    path: str
    sender: str
    pending: list[str]  # recipients not yet handed over
    arrived: datetime


@dataclass
class Link:
    name: str
    hop: routing.NextHop
    due: float  # time.monotonic() of the next attempt
    retries: int = 0  # scheduled retries spent (indexes the progressive schedule)
    glitches: int = 0
    retry: bool = False
    busy: bool = False
    messages: dict[str, list[str]] = field(default_factory=dict)  # message path (lower case) -> its recipients here


@dataclass
class HostQueue:
    generation: int  # the SMTPSVC start this state belongs to
    schedule: RetrySchedule
    messages: dict[str, Message] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)


class DeliveryEngine:
    def __init__(self, fleet: FleetState, metrics: Metrics, start_count, blackhole: Blackhole,
                 clock: LabClock) -> None:
        """start_count(host, service) -> how many times the service has started (lab.services.ServiceManager)."""
        self.fleet = fleet
        self.metrics = metrics
        self.start_count = start_count
        self.blackhole = blackhole
        self.clock = clock
        self._lock = threading.Lock()  # taken after fleet.lock, never before it
        self._wake = threading.Condition(self._lock)
        self._queues: dict[str, HostQueue] = {}
        self._dirty: set[str] = set()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._attempts: set[threading.Thread] = set()
        self._sock_lock = threading.Lock()
        self._sockets: dict[str, set[socket.socket]] = {}
        self._endpoints: set[tuple[str, int]] = set()

    # -- lifecycle and events
    def start(self) -> "DeliveryEngine":
        with self._lock:
            self._dirty.update(self.fleet.hosts)
        self._thread = threading.Thread(target=self._run, name="mail-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._wake.notify_all()
        with self._sock_lock:
            for socks in self._sockets.values():
                for sock in socks:
                    _shut(sock)
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._sock_lock:
            attempts = list(self._attempts)
        for t in attempts:
            t.join(timeout=5)

    def notify(self, host_name: str) -> None:
        """Something changed on the host: mail arrived, a service started or stopped."""
        with self._lock:
            self._dirty.add(host_name)
            self._wake.notify_all()

    def is_delivery(self, peer: tuple[str, int]) -> bool:
        """Is this client endpoint one of the engine's own sessions? (The listener counts those apart.)"""
        with self._sock_lock:
            return tuple(peer[:2]) in self._endpoints

    # -- the scheduler
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopped and not self._dirty and not self._due():
                    self._wake.wait(self._next_wait())
                if self._stopped:
                    return
                hosts = self._dirty | self._due()
                self._dirty.clear()
            for name in sorted(hosts):
                self._process(name)

    def _due(self) -> set[str]:
        now = time.monotonic()
        return {h for h, q in self._queues.items() if any(not ln.busy and ln.due <= now for ln in q.links.values())}

    def _next_wait(self) -> float | None:
        dues = [ln.due for q in self._queues.values() for ln in q.links.values() if not ln.busy and ln.due != _NEVER]
        return max(min(dues) - time.monotonic(), 0.0) if dues else None

    # -- one host: read its queue, route, deliver locally, launch what is due
    def _process(self, name: str) -> None:
        launch = []
        with self.fleet.lock:
            host = self.fleet.hosts.get(name)
            metabase = read_metabase(host) if host is not None else None
            svc = host.service(IIS_SMTP_SERVICE) if host is not None else None
            if svc is None or svc.state != "running" or metabase is None or is_exchange_55(host):
                self._idle(name)
                return
            generation = self.start_count(name, IIS_SMTP_SERVICE)
            with self._lock:
                queue = self._queues.get(name)
                if queue is None or queue.generation != generation:
                    # SMTP (re)started: it re-reads its queue folder and GlitchRetrySeconds, and tries every hop now.
                    old = queue
                    queue = HostQueue(generation, schedule_for(host, metabase, vs_property, glitch_retry_seconds(host)))
                    if old is not None:
                        queue.messages = old.messages
                    self._queues[name] = queue
                queue.schedule = schedule_for(host, metabase, vs_property, queue.schedule.glitch_seconds)
                self._read_queue(host, metabase, queue)
                self._route(host, metabase, queue)
                now = time.monotonic()
                for link in queue.links.values():
                    if not link.busy and link.due <= now:
                        link.busy = True
                        launch.append((link, self._outgoing(host, queue, link)))
                self._show(host, queue)
        for link, outgoing in launch:
            t = threading.Thread(target=self._attempt, args=(name, link, outgoing),
                                 name=f"deliver-{name}-{link.name}", daemon=True)
            with self._sock_lock:
                self._attempts.add(t)
            t.start()

    def _idle(self, name: str) -> None:
        """SMTP is not running (or not loaded): in-flight sessions end with it; nothing is scheduled."""
        with self._lock:
            queue = self._queues.get(name)
            if queue is not None:
                for link in queue.links.values():
                    link.due = _NEVER
        with self._sock_lock:
            for sock in self._sockets.get(name, ()):
                _shut(sock)

    def _read_queue(self, host: HostState, metabase: dict, queue: HostQueue) -> None:
        folder = vs_directory(host, metabase, "QueueDirectory")
        present = {}
        for path, f in host.files.listdir(folder):
            if not path.lower().endswith(".eml"):
                continue
            key = path.lower()
            present[key] = queue.messages.get(key)
            if present[key] is None:
                env = routing.envelope(f.data)
                present[key] = Message(path, env.sender, list(env.recipients), parse_iso(f.mtime))
        queue.messages = present
        badmail = vs_directory(host, metabase, "BadMailDirectory")
        for key, message in list(queue.messages.items()):
            if not message.pending or self.clock.lab_age(message.arrived) >= queue.schedule.expire_seconds:
                self._move(host, message.path, badmail + "\\" + _stem(message.path) + ".BAD")
                del queue.messages[key]

    def _route(self, host: HostState, metabase: dict, queue: HostQueue) -> None:
        """Group pending recipients by next hop; deliver the local ones; drop links left without mail."""
        wanted: dict[str, tuple[routing.NextHop, dict[str, list[str]]]] = {}
        for key, message in list(queue.messages.items()):
            for rcpt in list(message.pending):
                hop = routing.next_hop(self.fleet, host, metabase, rcpt)
                if hop.local:
                    self._deliver_locally(host, metabase, message, rcpt)
                    message.pending.remove(rcpt)
                    continue
                wanted.setdefault(hop.name.lower(), (hop, {}))[1].setdefault(key, []).append(rcpt)
            if not message.pending:
                host.files.delete(message.path)
                del queue.messages[key]
        for low, (hop, keys) in wanted.items():
            link = queue.links.get(low)
            if link is None:
                # A link the server already showed in Retry (the scenario's state) stays in Retry until it delivers.
                link = queue.links[low] = Link(hop.name, hop, due=time.monotonic(),
                                               retry=routing.is_exchange_2003(host) and links.shows_retry(host, hop.name))
            link.hop, link.messages = hop, keys
        for low in [low for low, ln in queue.links.items() if low not in wanted and not ln.busy]:
            if routing.is_exchange_2003(host):
                links.drop_link(host, queue.links[low].name)
            del queue.links[low]

    @staticmethod
    def _deliver_locally(host: HostState, metabase: dict, message: Message, rcpt: str) -> None:
        f = host.files.read(message.path)
        if f is not None:
            folder = routing.local_folder(host, metabase, rcpt)
            host.files.write(folder + "\\" + message.path.rsplit("\\", 1)[-1], f.data, iso(datetime.now(timezone.utc)))

    @staticmethod
    def _move(host: HostState, src: str, dst: str) -> None:
        f = host.files.read(src)
        if f is not None:
            host.files.write(dst, f.data, f.mtime)
            host.files.delete(src)

    @staticmethod
    def _outgoing(host: HostState, queue: HostQueue, link: Link) -> list[client.Outgoing]:
        out = []
        for key, rcpts in link.messages.items():
            message = queue.messages[key]
            f = host.files.read(message.path)
            if f is not None:
                out.append(client.Outgoing(key, message.sender, list(rcpts), f.data))
        return out

    def _show(self, host: HostState, queue: HostQueue) -> None:
        if not routing.is_exchange_2003(host):
            return  # a Windows SMTP relay has no Exchange queue viewer
        now = time.monotonic()
        for link in queue.links.values():
            arrived = [queue.messages[k].arrived for k in link.messages if k in queue.messages]
            if not arrived:
                continue
            due = None if link.due == _NEVER else self.clock.wall_after(max(link.due - now, 0.0))
            links.show_link(host, link.name, messages=len(arrived), oldest=min(arrived), retry=link.retry,
                            active=link.busy, next_attempt=due)

    # -- one attempt
    def _attempt(self, name: str, link: Link, outgoing: list[client.Outgoing]) -> None:
        opened: list[socket.socket] = []
        try:
            with self.fleet.lock:
                host = self.fleet.host(name)
                profile = sender.profile(self.fleet, host, link.hop.host)
                source = host.address
                target = self._endpoint(host, link.hop)
            if not outgoing:
                result = client.Transfer()
            elif target is None:
                result = client.Transfer(failure=client.Failure.UNRESOLVED, detail=f"{link.hop.name} does not resolve")
            else:
                self.metrics.bump(name, "delivery_attempts")
                result = client.transfer(lambda: self._connect(name, source, target, opened), profile, outgoing,
                                         self.clock.wait(OUTBOUND_TIMEOUT_SECONDS))
            self._finish(name, link, result, profile)
        finally:
            with self._sock_lock:
                for sock in opened:
                    self._sockets.get(name, set()).discard(sock)
                    self._endpoints.discard(getattr(sock, "lab_endpoint", None))
                self._attempts.discard(threading.current_thread())

    def _endpoint(self, host: HostState, hop: routing.NextHop) -> tuple[str, int] | None:
        if hop.address is None:
            return None
        peer = self.fleet.host_by_address(hop.address)
        if peer is None or self.fleet.is_blocked(host.name, peer.name):
            return self.blackhole.address, self.blackhole.port  # the lab's network reaches its own hosts only
        return peer.address, int(peer.ports.get("smtp", SMTP_PORT))

    def _connect(self, name: str, source: str, target: tuple[str, int], opened: list) -> socket.socket:
        """A socket from the sender's own address, known to the engine (for stop, and for the listener's counters)
        before it connects."""
        if self._stopped:
            raise ConnectionAbortedError("the lab is stopping")
        sock = _Socket(socket.AF_INET, socket.SOCK_STREAM)
        opened.append(sock)
        try:
            sock.bind((source, 0))
            sock.lab_endpoint = sock.getsockname()[:2]
            with self._sock_lock:
                self._endpoints.add(sock.lab_endpoint)
                self._sockets.setdefault(name, set()).add(sock)
            sock.settimeout(self.clock.wait(CONNECT_TIMEOUT_SECONDS))
            sock.connect(target)
            sock.settimeout(None)
            return sock
        except OSError:
            sock.close()
            raise

    def _finish(self, name: str, link: Link, result: client.Transfer, profile: sender.SenderProfile) -> None:
        with self.fleet.lock:
            host = self.fleet.host(name)
            metabase = read_metabase(host)
            svc = host.service(IIS_SMTP_SERVICE)
            with self._lock:
                queue = self._queues.get(name)
                link.busy = False
                current = (queue is not None and svc is not None and svc.state == "running" and metabase is not None
                           and queue.generation == self.start_count(name, IIS_SMTP_SERVICE))
                if not current:
                    self._wake.notify_all()
                    return  # SMTP stopped or restarted meanwhile: what this session did not finish is tried again
                self._settle(host, metabase, queue, result)
                self._reschedule(queue, link, result)
                if result.failure is client.Failure.DROPPED and profile.logs_4006:
                    peer = self.fleet.host(link.hop.host) if link.hop.host else None
                    links.log_4006(host, link.hop.address or "", peer.fqdn if peer else link.hop.name,
                                   datetime.now(timezone.utc))
                self._route(host, metabase, queue)
                self._show(host, queue)
                self._wake.notify_all()

    def _settle(self, host: HostState, metabase: dict, queue: HostQueue, result: client.Transfer) -> None:
        badmail = vs_directory(host, metabase, "BadMailDirectory")
        for key, done in {**result.accepted, **result.rejected}.items():
            message = queue.messages.get(key)
            if message is None:
                continue
            message.pending = [r for r in message.pending if r not in done]
            if key in result.accepted:
                self.metrics.bump(host.name, "messages_delivered")
            if not message.pending:
                if key in result.rejected:
                    self._move(host, message.path, badmail + "\\" + _stem(message.path) + ".BAD")
                else:
                    host.files.delete(message.path)
                del queue.messages[key]

    def _reschedule(self, queue: HostQueue, link: Link, result: client.Transfer) -> None:
        now, schedule = time.monotonic(), queue.schedule
        if result.failure is None:
            link.retry, link.retries, link.glitches, link.due = False, 0, 0, now
            return
        link.retry = True
        if result.failure is client.Failure.TRANSIENT and link.glitches < schedule.glitch_retries:
            link.glitches += 1
            link.due = now + self.clock.real(schedule.glitch_seconds)
            return
        link.glitches = 0
        link.due = now + self.clock.real(schedule.retry_interval(link.retries))
        link.retries += 1


class _Socket(socket.socket):
    lab_endpoint: tuple[str, int] | None = None  # the local (address, port) the listener will see


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _stem(path: str) -> str:
    return os.path.splitext(path.rsplit("\\", 1)[-1])[0]
