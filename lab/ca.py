"""The lab certificate authority behind every host's WinRM HTTPS listener.

Clients keep certificate validation on and trust this CA (Ansible's
ansible_winrm_ca_trust_path, pywinrm's ca_trust_path), so HTTPS in the lab
exercises the same verification a production inventory needs. Keys are
ECDSA P-256: instant to generate for a whole fleet, and every client here is
OpenSSL-based, so what a 2003-era Schannel would accept does not matter.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab.state import HostState

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
_CA_VALIDITY = datetime.timedelta(days=3650)
_HOST_VALIDITY = datetime.timedelta(days=825)  # the longest server lifetime browsers/OpenSSL tolerate
_CLOCK_SKEW = datetime.timedelta(days=1)


class LabCA:
    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_pem_path = str(self.directory / CA_CERT_FILE)
        self._lock = threading.Lock()
        self._contexts: dict[tuple[str, str, str], ssl.SSLContext] = {}
        key_path = self.directory / CA_KEY_FILE
        if Path(self.ca_pem_path).exists() and key_path.exists():
            self._cert = x509.load_pem_x509_certificate(Path(self.ca_pem_path).read_bytes())
            self._key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        else:
            self._key, self._cert = _new_ca()
            _write_private(key_path, _key_pem(self._key))
            Path(self.ca_pem_path).write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    def server_context(self, host: HostState) -> ssl.SSLContext:
        """TLS server context for host: SAN = IP address, FQDN and short name."""
        identity = (host.address, host.fqdn.lower(), host.name.lower())
        with self._lock:
            context = self._contexts.get(identity)
            if context is None:
                context = self._contexts[identity] = self._issue(host)
            return context

    def _issue(self, host: HostState) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names = [x509.IPAddress(ipaddress.ip_address(host.address)), x509.DNSName(host.fqdn)]
        if host.name.lower() != host.fqdn.lower():
            names.append(x509.DNSName(host.name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host.fqdn)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + _HOST_VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._cert.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        # ssl can only load a certificate chain from files; keep them beside
        # the CA so `openssl s_client` debugging sees the same thing.
        stem = host.name.lower()
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_path, _key_pem(key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        return context


def _key_usage(**allowed: bool) -> x509.KeyUsage:
    """KeyUsage with only the named bits set."""
    bits = dict.fromkeys(("digital_signature", "key_encipherment", "content_commitment", "data_encipherment",
                          "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
    bits.update(allowed)
    return x509.KeyUsage(**bits)


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailflow lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, "mailflow lab CA"),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
