"""One outgoing SMTP session of a lab host's SMTP service: connect, greet, hand over messages, quit.

The client speaks to the lab's own listeners over loopback, so everything on
the receiving side (a stopped service, Windows Firewall, a missing banner,
greylisting, SMTP inspection on the path) acts on it as it acts on any other
client. The network between the hosts is the lab's: a pair the network drops,
or an address no lab host has, is sent to a Blackhole so the connect really
times out. What the sender's own software does to the session comes from
its SenderProfile (lab/smtp/sender.py).

EHLO first; a 5xx answer (SMTP inspection refuses it) falls back to HELO
(RFC 2821 4.1.4). With S-TNEF and a peer that offers BINARYMIME and CHUNKING
the message goes as ``BDAT n LAST``, otherwise over DATA. Replies are waited
for as long as the outbound connection time-out allows (lab/smtp/schedule.py).
"""
from __future__ import annotations

import enum
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from lab.smtp.probe import ReplyClosed, ReplyReader, ReplyTimeout
from lab.smtp.sender import SenderProfile


class Failure(enum.Enum):
    UNRESOLVED = "unresolved"  # the next hop's name resolves to nothing
    CONNECT = "connect"  # refused, or the connect timed out: nothing answered
    DROPPED = "dropped"  # connected, then a reply never came: the semaphore timeout (Event 4006)
    CLOSED = "closed"  # the peer closed the session
    TRANSIENT = "transient"  # a 4xx reply: the "glitch" that is retried GlitchRetrySeconds later
    PROTOCOL = "protocol"  # no 220 greeting, or a 5xx where none was expected


@dataclass
class Outgoing:
    """One queued message and the recipients still to be handed to this next hop."""

    key: str  # the queue file's path
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class Transfer:
    accepted: dict[str, list[str]] = field(default_factory=dict)  # key -> recipients the peer took the message for
    rejected: dict[str, list[str]] = field(default_factory=dict)  # key -> recipients refused for good (5xx)
    failure: Failure | None = None
    detail: str = ""


def _wire_body(data: bytes) -> bytes:
    """CRLF line ends and dot-stuffing (RFC 2821 4.5.2), ending in CRLF."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


class Session:
    def __init__(self, sock: socket.socket, profile: SenderProfile, reply_wait: float) -> None:
        self.sock = sock
        self.profile = profile
        self.reply_wait = reply_wait
        self.reader = ReplyReader(sock)
        self.step = "banner"

    def ask(self, command: bytes | None, step: str) -> str:
        self.step = step
        if command is not None:
            self.sock.sendall(command)
        return self.reader.reply(time.monotonic() + self.reply_wait)

    def greet(self) -> set[str]:
        banner = self.ask(None, "the banner")
        if not banner.startswith("220"):
            raise _Refused(f"greeting {banner[:60]!r}")
        reply = self.ask(f"EHLO {self.profile.helo}\r\n".encode(), "the EHLO reply")
        if reply.startswith("5"):
            reply = self.ask(f"HELO {self.profile.helo}\r\n".encode(), "the HELO reply")
            if not reply.startswith("250"):
                raise _Refused(f"HELO answered {reply[:60]!r}")
            return set()
        if not reply.startswith("250"):
            raise _Refused(f"EHLO answered {reply[:60]!r}")
        return {line[4:].split()[0].upper() for line in reply.splitlines()[1:] if len(line) > 4 and line[4:].split()}

    def hand_over(self, message: Outgoing, features: set[str], transfer: Transfer) -> None:
        binary = self.profile.stnef and {"BINARYMIME", "CHUNKING"} <= features
        mail = self.ask(f"MAIL FROM:<{message.sender}>{' BODY=BINARYMIME' if binary else ''}\r\n".encode(), "the MAIL reply")
        if not mail.startswith("2"):
            self._reset()
            raise (_Transient if mail.startswith("4") else _Refused)(f"MAIL answered {mail[:80]!r}")
        taken, temporary = [], ""
        for rcpt in message.recipients:
            reply = self.ask(f"RCPT TO:<{rcpt}>\r\n".encode(), "the RCPT reply")
            if reply.startswith("2"):
                taken.append(rcpt)
            elif reply.startswith("4"):
                temporary = temporary or reply.splitlines()[0]
            else:
                transfer.rejected.setdefault(message.key, []).append(rcpt)
        if not taken:
            self._reset()
            if temporary:
                raise _Transient(temporary)
            return
        reply = self._bdat(message.data) if binary else self._data(message.data)
        if reply.startswith("2"):
            transfer.accepted[message.key] = taken
        elif reply.startswith("4"):
            raise _Transient(reply.splitlines()[0])
        else:
            transfer.rejected.setdefault(message.key, []).extend(taken)
        if temporary:
            raise _Transient(temporary)

    def _bdat(self, data: bytes) -> str:
        if self.profile.holds_end_of_data or self.profile.period_on_last_line:
            # Chunking has no terminating line to break; the message still never ends where the peer expects:
            # the last chunk falls short of the size it announced (a lab model of the same stall).
            return self.ask(f"BDAT {len(data)} LAST\r\n".encode() + data[:-1], "the BDAT reply")
        return self.ask(f"BDAT {len(data)} LAST\r\n".encode() + data, "the BDAT reply")

    def _data(self, data: bytes) -> str:
        go = self.ask(b"DATA\r\n", "the DATA reply")
        if not go.startswith("354"):
            return go
        body = _wire_body(data)
        if self.profile.holds_end_of_data:
            self.sock.sendall(body)  # the local proxy keeps the rest back
            return self.ask(None, "the reply to the end of the message")
        if self.profile.stnef or self.profile.period_on_last_line:
            body = body[:-2]  # the "." lands on the last text line: no line of its own
        return self.ask(body + b".\r\n", "the reply to the end of the message")

    def _reset(self) -> None:
        self.ask(b"RSET\r\n", "the RSET reply")

    def quit(self) -> None:
        try:
            self.ask(b"QUIT\r\n", "the QUIT reply")
        except (ReplyTimeout, ReplyClosed, OSError):
            pass


class _Transient(Exception):
    pass


class _Refused(Exception):
    pass


def transfer(connect: Callable[[], socket.socket], profile: SenderProfile, messages: list[Outgoing],
             reply_wait: float) -> Transfer:
    """Hand messages to one next hop over one session. connect() returns a connected socket or raises OSError
    (ConnectionRefusedError, socket.timeout); the socket is closed here."""
    result = Transfer()
    try:
        sock = connect()
    except OSError as exc:
        result.failure, result.detail = Failure.CONNECT, f"connect: {exc or type(exc).__name__}"
        return result
    session = Session(sock, profile, reply_wait)
    try:
        features = session.greet()
        for message in messages:
            session.hand_over(message, features, result)
        session.quit()
    except _Transient as exc:
        result.failure, result.detail = Failure.TRANSIENT, str(exc)
        session.quit()
    except _Refused as exc:
        result.failure, result.detail = Failure.PROTOCOL, str(exc)
        session.quit()
    except ReplyTimeout:
        result.failure, result.detail = Failure.DROPPED, f"timed out waiting for {session.step}"
    except (ReplyClosed, OSError) as exc:
        result.failure, result.detail = Failure.CLOSED, f"closed while waiting for {session.step}: {exc or 'EOF'}"
    finally:
        try:
            sock.close()
        except OSError:
            pass
    return result
