"""One SMTP conversation on an accepted socket, as the host's software holds it.

The replies follow IIS 6 SMTP (Exchange 2003 / Windows 2003). A SessionProfile
says what differs per host and per path: the banner (or none at all), the
EHLO extensions, greylisting, and SMTP inspection by a middlebox, which the
lab folds into the session because the middlebox is not a separate process:
Mailguard masks the banner and answers every command outside basic SMTP with
500 (KB 295725).
"""
from __future__ import annotations

import email.utils
import socket
import struct
import threading
import time
import uuid
from typing import Callable

from lab.smtp.behaviour import SessionProfile

MAX_COMMAND_LINE = 4096
MAX_DATA_LINE = 65536
IDLE_TIMEOUT = 600  # seconds; IIS SMTP's default ConnectionTimeout

# What PIX Mailguard lets through; everything else is answered with 500.
BASIC_SMTP = frozenset({"HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"})

Deliver = Callable[[str, bytes], None]  # (file name, message bytes)


def mask_banner(banner: str) -> str:
    """Mailguard on PIX 5.1+ turns all but '2', '0' and spaces into '*'."""
    return "".join(c if c in "20 " else "*" for c in banner)


class Greylist:
    """Greylisting as Evan Harris described it ("The Next Step in the Spam Control War: Greylisting", 2003)
    and RFC 6647 keeps it: the key is the triplet (client IP address, envelope sender, envelope recipient).

    A triplet seen for the first time is deferred and recorded. A retry of it before the delay has passed is
    deferred again, without resetting the clock; the first retry after the delay passes and whitelists the
    triplet. A record never retried is forgotten after PENDING_LIFETIME, a passed one after PASSED_LIFETIME
    without mail (both Harris's: 4 hours, 36 days), and a triplet forgotten starts over. A new sender or
    recipient is a new triplet, whatever the client passed before.

    Times are lab seconds: the lab's time factor shortens the delay and the lifetimes like every other
    interval (lab/smtp/schedule.py), so a retry schedule and the greylisting delay keep their proportions.
    """

    PENDING_LIFETIME = 4 * 3600
    PASSED_LIFETIME = 36 * 86400

    def __init__(self, time_factor: float = 1.0) -> None:
        self._seen: dict[tuple[str, str, str], tuple[float, float | None]] = {}  # first seen, passed (lab seconds)
        self._factor = time_factor
        self._lock = threading.Lock()

    def _now(self) -> float:
        return time.monotonic() * self._factor

    def admits(self, client_ip: str, sender: str, recipient: str, delay: float) -> bool:
        triplet = (client_ip, sender.lower(), recipient.lower())
        now = self._now()
        with self._lock:
            first, passed = self._seen.get(triplet, (now, None))
            if (passed is None and now - first > self.PENDING_LIFETIME) or (
                    passed is not None and now - passed > self.PASSED_LIFETIME):
                first, passed = now, None
            if passed is None and now - first >= delay:
                passed = now
            elif passed is not None:
                passed = now  # each message refreshes the whitelisting
            self._seen[triplet] = (first, passed)
        return passed is not None


def _address(arg: str, keyword: str) -> str | None:
    """The path in 'FROM:<a@b> BODY=8BITMIME' (keyword FROM); None if malformed."""
    head, sep, rest = arg.partition(":")
    if not sep or head.strip().upper() != keyword:
        return None
    rest = rest.strip()
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end > 0 else None
    return rest.split()[0] if rest else None


class SmtpSession:
    def __init__(self, conn: socket.socket, client_ip: str, profile: SessionProfile,
                 greylist: Greylist, deliver: Deliver) -> None:
        self.conn = conn
        self.client_ip = client_ip
        self.profile = profile
        self.greylist = greylist
        self.deliver = deliver
        self.rfile = conn.makefile("rb")
        self.helo: str | None = None
        self._reset()

    def _reset(self) -> None:
        self.sender: str | None = None
        self.recipients: list[str] = []
        self.chunks: list[bytes] = []

    # -- I/O
    def _send(self, *lines: str) -> None:
        """Send one reply; several lines make a multi-line reply (250-... 250 ...)."""
        body = [f"{line[:3]}-{line[4:]}" for line in lines[:-1]] + [lines[-1]]
        self.conn.sendall("".join(f"{line}\r\n" for line in body).encode("latin-1", "replace"))

    def run(self) -> None:
        self.conn.settimeout(IDLE_TIMEOUT)
        try:
            if self.profile.banner is None:
                self._stay_silent()
                return
            banner = self.profile.banner
            self._send(mask_banner(banner) if self.profile.inspected else banner)
            while True:
                line = self.rfile.readline(MAX_COMMAND_LINE)
                if not line:
                    return
                text = line.decode("latin-1").rstrip("\r\n")
                verb, _, arg = text.strip().partition(" ")
                verb = verb.upper()
                if verb in self.profile.resets_on:
                    # An RST, not a FIN: SO_LINGER on with a zero timeout makes close() abort the connection
                    # (closed here, before the listener's shutdown() could send a FIN).
                    self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.rfile.close()
                    self.conn.close()
                    return
                if self.profile.inspected and verb not in BASIC_SMTP:
                    self._send("500 5.5.1 Command unrecognized")
                    continue
                handler = getattr(self, f"_cmd_{verb.lower()}", None) if verb.isalpha() else None
                if handler is None:
                    self._send("500 5.3.3 Unrecognized command")
                elif handler(arg.strip()) is False:
                    return
        except (OSError, ValueError):  # peer vanished, idle timeout, or listener stopping
            return

    def _stay_silent(self) -> None:
        """Keep the session open without a word until the client gives up."""
        while self.rfile.read1(MAX_COMMAND_LINE):
            pass

    # -- commands
    def _cmd_helo(self, arg: str) -> None:
        self.helo = arg or self.client_ip
        self._reset()
        self._send(f"250 {self.profile.fqdn} Hello [{self.client_ip}]")

    def _cmd_ehlo(self, arg: str) -> None:
        self.helo = arg or self.client_ip
        self._reset()
        self._send(f"250 {self.profile.fqdn} Hello [{self.client_ip}]",
                   *(f"250 {verb}" for verb in self.profile.ehlo_verbs))

    def _cmd_mail(self, arg: str) -> None:
        if self.helo is None:
            return self._send("503 5.5.2 Send hello first")
        if self.sender is not None:
            return self._send("503 5.5.2 Sender already specified")
        sender = _address(arg, "FROM")
        if sender is None:
            return self._send("501 5.5.4 Invalid Address")
        self.sender = sender
        self._send(f"250 2.1.0 {sender}....Sender OK")

    def _cmd_rcpt(self, arg: str) -> None:
        if self.sender is None:
            return self._send("503 5.5.2 Need mail command")
        recipient = _address(arg, "TO")
        if not recipient:
            return self._send("501 5.5.4 Invalid Address")
        delay = self.profile.greylist_delay
        if delay is not None and not self.greylist.admits(self.client_ip, self.sender, recipient, delay):
            return self._send(f"450 4.7.1 <{recipient}>: Recipient address rejected: Greylisted, try again later")
        self.recipients.append(recipient)
        self._send(f"250 2.1.5 {recipient}")

    def _cmd_data(self, arg: str) -> None:
        if not self.recipients:
            return self._send("503 5.5.2 Need rcpt command")
        self._send("354 Start mail input; end with <CRLF>.<CRLF>")
        body = []
        while True:
            line = self.rfile.readline(MAX_DATA_LINE)
            if not line:
                raise ConnectionResetError("client closed during DATA")
            if line in (b".\r\n", b".\n"):
                break
            body.append(line[1:] if line.startswith(b".") else line)
        if self.profile.inspected:
            # KB 295725: Mailguard rejects a CRLF.CRLF that comes in a packet of its own, "The connection
            # eventually times out" (KB 919091 cause 5). The lab sees no packets, so an inspected session never
            # answers the end of DATA: the client's wait runs out.
            self._stay_silent()
            raise ConnectionResetError("the inspecting device held the end of DATA")
        self._queue(b"".join(body))

    def _cmd_bdat(self, arg: str) -> None:
        if not self.profile.chunking:
            return self._send("500 5.3.3 Unrecognized command")
        parts = arg.split()
        if not parts or not parts[0].isdigit() or (len(parts) > 1 and parts[1].upper() != "LAST"):
            return self._send("501 5.5.4 Invalid arguments")
        size = int(parts[0])
        chunk = self.rfile.read(size)  # always consume the chunk, even if refused
        if len(chunk) < size:
            raise ConnectionResetError("client closed during BDAT")
        if not self.recipients:
            return self._send("503 5.5.2 Need rcpt command")
        self.chunks.append(chunk)
        if len(parts) > 1:
            self._queue(b"".join(self.chunks))
        else:
            self._send(f"250 2.0.0 {size} bytes received")

    def _queue(self, message: bytes) -> None:
        message_id = f"NTFS_{uuid.uuid4()}.EML"
        received = (f"Received: from {self.helo} ([{self.client_ip}]) by {self.profile.fqdn} "
                    f"with {self.profile.software_version}; {email.utils.format_datetime(email.utils.localtime())}\r\n")
        self.deliver(message_id, received.encode("latin-1", "replace") + message)
        self._reset()
        self._send(f"250 2.6.0 <{message_id[5:-4]}@{self.profile.fqdn}> Queued mail for delivery")

    def _cmd_rset(self, arg: str) -> None:
        self._reset()
        self._send("250 2.0.0 Resetting")

    def _cmd_noop(self, arg: str) -> None:
        self._send("250 2.0.0 OK")

    def _cmd_vrfy(self, arg: str) -> None:
        self._send("252 2.1.5 Cannot VRFY user")

    def _cmd_quit(self, arg: str) -> bool:
        self._send(f"221 2.0.0 {self.profile.fqdn} Service closing transmission channel")
        return False
