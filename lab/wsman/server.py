"""One simulated host's WinRM listener: HTTP(S), authentication, faults.

HTTP (5985) speaks NTLM and, like a default Windows host (AllowUnencrypted =
false), only accepts SOAP bodies sealed with NTLM message encryption. HTTPS
(5986) takes Basic (and NTLM) over TLS with a certificate from the lab CA.
NTLM is connection-bound, so connections are HTTP/1.1 keep-alive and each one
carries its own handshake state.
"""
from __future__ import annotations

import base64
import logging
import socket
import ssl
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lab.runtime import Metrics
from lab.state import FleetState, HostState
from lab.wsman import auth
from lab.wsman.faults import take_countdown
from lab.wsman.service import DropConnection, RequestContext, ServerError, WinRSService, WireStats
from lab.wsman.shells import Executor

log = logging.getLogger(__name__)

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
_POLL_INTERVAL = 0.05  # seconds; bounds how long stop() and held requests take to notice
_TLS_HANDSHAKE_TIMEOUT = 10.0
_IDLE_KEEPALIVE = 120.0  # http.sys drops idle connections after two minutes too


class WinRMListener:
    def __init__(
        self,
        fleet: FleetState,
        metrics: Metrics,
        host_name: str,
        executor: Executor,
        scheme: str = "http",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be http or https, not {scheme!r}")
        if scheme == "https" and ssl_context is None:
            raise ValueError("an https listener needs an ssl_context (LabCA.server_context)")
        self.fleet, self.metrics, self.host_name = fleet, metrics, host_name
        self.executor, self.scheme, self.ssl_context = executor, scheme, ssl_context
        self.stopping = threading.Event()
        self.service = WinRSService(host_name, metrics, executor, self.stopping)
        self.user_file = auth.NtlmUserFile()
        self._server: _WSManHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # -- lifecycle
    @property
    def host(self) -> HostState:
        """Looked up per request so credential changes in the fleet apply at once."""
        return self.fleet.host(self.host_name)

    @property
    def address(self) -> tuple[str, int]:
        return self.host.address, int(self.host.ports[self.scheme])

    @property
    def endpoint(self) -> str:
        address, port = self.address
        return f"{self.scheme}://{address}:{port}/wsman"

    @property
    def stats(self) -> WireStats:
        return self.service.stats

    def start(self) -> None:
        if self._server is not None:
            return
        self.stopping = threading.Event()
        # A restarted WinRM service has forgotten every shell.
        self.service = WinRSService(self.host_name, self.metrics, self.executor, self.stopping)
        self._server = _WSManHTTPServer(self.address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_INTERVAL},
            name="winrm-%s-%s@%s:%s" % (self.host_name, self.scheme, *self.address), daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()  # releases held (timeout fault) and waiting (Receive) requests
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            # Wakes handler threads blocked reading the next keep-alive request.
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.user_file.remove()

    def __enter__(self) -> "WinRMListener":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- connection bookkeeping (for a prompt stop)
    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    # -- faults that apply before a request is understood
    def hold_while_timeout_fault(self) -> bool:
        """Sit on the request while the timeout fault is set; False if stopping."""
        while self.metrics.fault(self.host_name).timeout:
            if self.stopping.wait(_POLL_INTERVAL):
                return False
        return True

    def apply_latency(self) -> None:
        latency_ms = self.metrics.fault(self.host_name).latency_ms
        if latency_ms > 0:
            self.stopping.wait(latency_ms / 1000.0)


class _WSManHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], listener: WinRMListener) -> None:
        self.listener = listener
        super().__init__(address, _WSManRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind names the server by reverse DNS of its address (socket.getfqdn): about 50 ms per
        # listener where nothing answers for 127.x, five seconds of a 50-host lab's start. Nothing reads the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients vanishing, failed TLS handshakes and our own drops are
        # routine here; anything else is a lab bug worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):  # includes ssl.SSLError and timeouts
            log.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
        else:
            log.exception("WinRM listener for %s failed on a request from %s", self.listener.host_name, client_address)


class _WSManRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = _IDLE_KEEPALIVE
    server: _WSManHTTPServer

    def setup(self) -> None:
        self.listener = self.server.listener
        self.ntlm: auth.NtlmHandshake | None = None  # this connection's NTLM state
        self.ntlm_user: str | None = None  # set once the handshake has verified
        self.mechanism: str | None = None  # how the current request authenticated: basic | ntlm
        context = self.listener.ssl_context
        if context is not None:
            self.request.settimeout(_TLS_HANDSHAKE_TIMEOUT)
            self.request = context.wrap_socket(self.request, server_side=True)
        self.listener.track(self.request)
        super().setup()

    def finish(self) -> None:
        self.listener.untrack(self.request)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s: " + format, self.listener.host_name, self.client_address[0], *args)

    # -- the request pipeline
    def do_POST(self) -> None:
        listener = self.listener
        listener.metrics.bump(listener.host_name, "http_requests")
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit():  # no chunked uploads: WinRM clients always send a length
            self.close_connection = True  # the unread body would garble the next request
            return self._reply(411, b"", "text/html")
        body = self.rfile.read(int(length))
        if not listener.hold_while_timeout_fault():
            return self._drop()
        listener.apply_latency()
        if take_countdown(listener.metrics, listener.host_name, "drop_connections"):
            return self._drop()
        if self.path.split("?")[0].rstrip("/").lower() != "/wsman":
            return self._reply(404, b"", "text/html")
        user = self._authenticate()
        if user is None:
            return
        sealed = self.headers.get("Content-Type", "").lower().startswith("multipart/encrypted")
        try:
            xml = self._open_body(body, sealed)
        except ValueError as exc:
            log.debug("unusable body from %s: %s", self.client_address[0], exc)
            return self._reply(400, b"", "text/html")
        if xml is None:
            return self._reply_unauthorized(counted=False)
        if take_countdown(listener.metrics, listener.host_name, "http_500"):
            # Unsealed on purpose: the body above was still decrypted, so the
            # NTLM sealing state stays in step with the client's.
            return self._reply(500, b"", "text/html")
        if not xml:
            return self._reply(200, b"", SOAP_CONTENT_TYPE)  # pywinrm's empty POST that sets up the session
        config = listener.host.winrm_config
        context = RequestContext(
            user=user, client_ip=self.client_address[0], endpoint=listener.endpoint, machine=listener.host.fqdn,
            mechanism=self.mechanism or "ntlm", max_envelope_kb=int(config.get("MaxEnvelopeSizekb", 150)),
            max_timeout_ms=int(config.get("MaxTimeoutms", 60000)),
        )
        try:
            status, answer = listener.service.handle(xml, context)
        except DropConnection:
            return self._drop()
        except ServerError:
            return self._reply(500, b"", "text/html")
        if status == 413:
            return self._reply(413, b"", "text/html")  # unsealed, as the 500 fault above: no SOAP to seal
        self._reply_soap(status, answer, sealed)

    def _authenticate(self) -> str | None:
        """The authenticated user, or None once a 401 has been sent."""
        host = self.listener.host
        credentials = auth.parse_authorization(self.headers.get("Authorization"))
        if credentials is None:
            if self.ntlm_user is not None:
                self.mechanism = "ntlm"
                return self.ntlm_user  # NTLM authenticates the connection, not each request
            return self._reply_unauthorized(counted=False)
        scheme, token = credentials
        try:
            if scheme == "Basic":
                if self.listener.scheme != "https":
                    # Basic over plain HTTP is refused (AllowUnencrypted = false).
                    return self._reply_unauthorized(counted=False)
                user = auth.check_basic(token, host.username, host.password)
                self.mechanism = "basic"
                return user
            if scheme.lower() not in ("ntlm", "negotiate"):
                return self._reply_unauthorized(counted=False)
            if auth.is_ntlm_negotiate(token):
                self.listener.user_file.update(host.username, host.password, _computer_name(host))
                self.ntlm, self.ntlm_user = auth.NtlmHandshake(self.listener.user_file), None
                challenge = base64.b64encode(self.ntlm.step(token) or b"").decode("ascii")
                return self._reply_unauthorized(counted=False, challenge=f"{scheme} {challenge}")
            if self.ntlm is None or self.ntlm.complete:
                return self._reply_unauthorized(counted=False)  # Authenticate without a Negotiate first
            self.ntlm.step(token)
            self.ntlm_user = self.ntlm.user or host.username
            self.mechanism = "ntlm"
            return self.ntlm_user
        except auth.AuthenticationFailed as exc:
            log.info("%s: logon failure from %s: %s", self.listener.host_name, self.client_address[0], exc)
            self.ntlm = self.ntlm_user = None
            return self._reply_unauthorized(counted=True)

    def _open_body(self, body: bytes, sealed: bool) -> bytes | None:
        """The SOAP XML; None when a plaintext body must be refused."""
        stats = self.listener.stats
        if sealed:
            if self.ntlm is None or not self.ntlm.complete:
                raise ValueError("encrypted body on a connection without an NTLM session")
            stats.add("sealed_requests")
            return self.ntlm.unseal(body)
        if body and self.listener.scheme == "http":
            # A default Windows host refuses unencrypted SOAP over HTTP with 401.
            return None
        if body:
            stats.add("plaintext_requests")
        return body

    # -- answers
    def _reply_unauthorized(self, counted: bool, challenge: str | None = None) -> None:
        if counted:
            self.listener.metrics.bump(self.listener.host_name, "auth_failures")
        if challenge:
            offers = [challenge]
        else:
            offers = ["Negotiate"] + (['Basic realm="WSMAN"'] if self.listener.scheme == "https" else [])
        self._reply(401, b"", None, [("WWW-Authenticate", offer) for offer in offers])
        return None

    def _reply_soap(self, status: int, xml: bytes, seal: bool) -> None:
        if seal and self.ntlm is not None:
            self.listener.stats.add("sealed_responses")
            return self._reply(status, self.ntlm.seal(xml), auth.ENCRYPTED_CONTENT_TYPE)
        self._reply(status, xml, SOAP_CONTENT_TYPE)

    def _reply(self, status: int, body: bytes, content_type: str | None, headers: list | None = None) -> None:
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection without a word, as a dying host would."""
        self.close_connection = True
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _computer_name(host: HostState) -> str:
    return str(host.os.get("computer_name") or host.name).upper()


