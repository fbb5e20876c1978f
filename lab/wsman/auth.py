"""WinRM authentication: NTLM (with message encryption) and Basic.

NTLM is verified by pyspnego's pure-Python acceptor. That acceptor finds the
expected password only through the process-wide NTLM_USER_FILE environment
variable, read while it processes the Authenticate message. To check each
host's own credentials, every listener keeps a private user file holding just
its host's account, and every acceptor call runs with NTLM_USER_FILE pointing
at that file under one process-wide lock. The calls are pure computation
(microseconds), so serialising them costs nothing; the one side effect is
that another thread reading os.environ at that instant could see the lab's
value, which nothing in the lab cares about.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import os
import re
import shutil
import struct
import tempfile
import threading
from typing import Iterator

import spnego
import spnego.exceptions

ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
_BOUNDARY = b"--Encrypted Boundary"
_OCTET_STREAM_HEADER = b"\tContent-Type: application/octet-stream\r\n"
_NTLM_SIGNATURE_SIZE = 16
_NTLM_MESSAGE_PREFIX = b"NTLMSSP\x00"

_USER_FILE_ENV = "NTLM_USER_FILE"
_USER_FILE_LOCK = threading.Lock()


class AuthenticationFailed(Exception):
    """The client proved the wrong credentials (count it, answer 401)."""


class NtlmUserFile:
    """A private NTLM_USER_FILE holding one host's account."""

    def __init__(self) -> None:
        self._directory: str | None = None
        self._written: str | None = None
        self._lock = threading.Lock()  # connections of one listener update it concurrently

    @property
    def path(self) -> str:
        if self._directory is None:
            raise RuntimeError("the NTLM user file is written on the first update()")
        return os.path.join(self._directory, "users")

    def update(self, username: str, password: str, computer_name: str) -> None:
        """(Re)write the file when the host's credentials have changed.

        Written aside and renamed into place, so an acceptor reading it on
        another connection never sees a half-written file.
        """
        content = "".join(f"{line}\n" for line in _user_file_lines(username, password, computer_name))
        with self._lock:
            if self._directory is None or not os.path.isdir(self._directory):
                self._directory, self._written = tempfile.mkdtemp(prefix="lab-ntlm-"), None  # 0700
            if content == self._written:
                return
            fd, staging = tempfile.mkstemp(dir=self._directory)  # 0600: the passwords stay private
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.replace(staging, self.path)
            self._written = content

    def remove(self) -> None:
        with self._lock:
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = self._written = None


def _user_file_lines(username: str, password: str, computer_name: str) -> list[str]:
    # pyspnego's "DOMAIN:USER:PASSWORD" lines split on ':' (no escaping).
    if ":" in username or ":" in password or "\n" in username + password:
        raise ValueError("NTLM lab accounts cannot contain ':' or newlines in the user name or password")
    domain, _, user = username.rpartition("\\")
    if domain:
        return [f"{domain}:{user}:{password}"]
    # A local account answers to "user", "COMPUTER\user" and ".\user".
    return [f":{user}:{password}", f"{computer_name}:{user}:{password}", f".:{user}:{password}"]


@contextlib.contextmanager
def _user_file_in_effect(user_file: NtlmUserFile) -> Iterator[None]:
    with _USER_FILE_LOCK:
        previous = os.environ.get(_USER_FILE_ENV)
        os.environ[_USER_FILE_ENV] = user_file.path
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(_USER_FILE_ENV, None)
            else:
                os.environ[_USER_FILE_ENV] = previous


class NtlmHandshake:
    """One connection's NTLM acceptor: Negotiate -> Challenge -> Authenticate."""

    def __init__(self, user_file: NtlmUserFile) -> None:
        self._user_file = user_file
        with _user_file_in_effect(user_file):
            # use_ntlm: always the pure-Python NTLM code, never a system GSSAPI.
            self._context = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)

    @property
    def complete(self) -> bool:
        return self._context.complete

    def step(self, token: bytes) -> bytes | None:
        """Feed one client token; returns the Challenge, or None once verified."""
        try:
            with _user_file_in_effect(self._user_file):
                answer = self._context.step(token)
        except (spnego.exceptions.SpnegoError, ValueError, struct.error) as exc:
            # Unknown user, wrong password and garbage tokens alike are a failed logon.
            raise AuthenticationFailed(str(exc)) from exc
        return answer

    @property
    def user(self) -> str:
        return self._context.client_principal or ""

    def unseal(self, body: bytes) -> bytes:
        """The SOAP XML inside a multipart/encrypted request body (ValueError if unusable)."""
        header_end = body.find(_OCTET_STREAM_HEADER)
        trailer = body.rfind(_BOUNDARY + b"--")
        length = re.search(rb"Length=(\d+)", body[:header_end] if header_end > 0 else b"")
        if header_end < 0 or trailer < header_end or not length:
            raise ValueError("malformed multipart/encrypted body")
        payload = body[header_end + len(_OCTET_STREAM_HEADER):trailer]
        try:
            (signature_size,) = struct.unpack("<I", payload[:4])
            plain = self._context.unwrap(payload[4:]).data  # signature + sealed, as pyspnego wants
        except (spnego.exceptions.SpnegoError, struct.error) as exc:
            raise ValueError(f"cannot unseal the request: {exc}") from exc
        if signature_size != _NTLM_SIGNATURE_SIZE or len(plain) != int(length.group(1)):
            raise ValueError("encrypted body length does not match its OriginalContent header")
        return plain

    def seal(self, plain: bytes) -> bytes:
        """A multipart/encrypted response body carrying plain."""
        wrapped = self._context.wrap(plain, encrypt=True).data  # 16-byte signature + sealed data
        return (
            _BOUNDARY + b"\r\n"
            + f"\tContent-Type: {ENCRYPTED_PROTOCOL}\r\n".encode()
            + f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(plain)}\r\n".encode()
            + _BOUNDARY + b"\r\n" + _OCTET_STREAM_HEADER
            + struct.pack("<I", _NTLM_SIGNATURE_SIZE) + wrapped
            + _BOUNDARY + b"--\r\n"
        )


def parse_authorization(header: str | None) -> tuple[str, bytes] | None:
    """("Basic"|"NTLM"|"Negotiate", decoded token) or None."""
    if not header or " " not in header.strip():
        return None
    scheme, _, value = header.strip().partition(" ")
    try:
        return scheme.capitalize() if scheme.lower() == "basic" else scheme, base64.b64decode(value.strip())
    except (binascii.Error, ValueError):
        return None


def is_ntlm_negotiate(token: bytes) -> bool:
    """Type 1 message: the client (re)starts a handshake on this connection."""
    return token.startswith(_NTLM_MESSAGE_PREFIX) and token[8:12] == b"\x01\x00\x00\x00"


def check_basic(token: bytes, username: str, password: str) -> str:
    """The user name when user:password matches the host's account."""
    user, _, given = token.decode("utf-8", "replace").partition(":")
    user_ok = user.lower() == username.lower()
    password_ok = hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))
    if not (user_ok and password_ok):
        raise AuthenticationFailed(f"Basic logon refused for {user!r}")
    return user
