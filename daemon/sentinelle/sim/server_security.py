"""Security of the simulated plant's OPC-UA server: endpoints' policies, its certificate, which
client certificates it trusts, and the user tokens it accepts (a name and password, X.509 users).

Apart from :mod:`.server` (the address space and the sampling loop) because it is configuration
checked once at start, with its own failures: each unreadable file or missing folder is a
:class:`~sentinelle.errors.ConfigError` naming the ``simulator.*`` setting.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from asyncua import ua
from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

from ..errors import ConfigError
from ..settings import SimulatorSettings
from ..sources.opcua_security import application_uri_of, server_policy_types

__all__ = ["DEFAULT_APPLICATION_URI", "setup_security"]

DEFAULT_APPLICATION_URI = "urn:sentinelle:sim:server"
"""The server's application URI without a certificate (with one, the URI in its SubjectAltName)."""


class _UserManager(UserManager):
    """One user name and password and/or a set of X.509 user certificates; anything else is refused
    (BadUserAccessDenied)."""

    def __init__(self, username: str | None, password: SecretStr | None, user_certs: frozenset[bytes]) -> None:
        self._username = (username or "").encode()
        self._password = (password.get_secret_value() if password else "").encode()
        self._user_certs = user_certs

    def get_user(
        self,
        iserver: object,
        username: str | None = None,
        password: str | bytes | None = None,
        certificate: object = None,
    ) -> User | None:
        if username is None:
            # An X.509 token: its DER bytes, the signature verified by asyncua.  (For a user name
            # token asyncua passes the channel's client certificate here instead.)
            known = isinstance(certificate, bytes) and certificate in self._user_certs
            return User(role=UserRole.User, name="x509") if known else None
        if not self._username:
            return None
        given = password.encode() if isinstance(password, str) else bytes(password or b"")
        ok = hmac.compare_digest((username or "").encode(), self._username) & hmac.compare_digest(given, self._password)
        return User(role=UserRole.User, name=username) if ok else None


async def setup_security(server: Server, s: SimulatorSettings) -> str:
    """Endpoints, certificate, client trust and user tokens as configured; returns the application URI.

    With a certificate the application URI is the one in its SubjectAltName (clients check that
    they match).  Secured endpoints accept only the client certificates of
    ``trusted_client_certs_dir`` (asyncua alone would accept any).
    """
    server.set_security_policy(server_policy_types(s.security_policies))
    tokens: list[type] = [ua.UserNameIdentityToken] if s.username else []
    user_certs: frozenset[bytes] = frozenset()
    if s.user_certificates_dir is not None:
        tokens.append(ua.X509IdentityToken)
        user_certs = _load_user_certificates(s.user_certificates_dir)
    server.set_identity_tokens(tokens or [ua.AnonymousIdentityToken])
    if tokens:
        server.iserver.set_user_manager(_UserManager(s.username, s.password, user_certs))
    if s.certificate_path is None or s.private_key_path is None:
        return DEFAULT_APPLICATION_URI
    try:
        cert = await uacrypto.load_certificate(s.certificate_path)
        await server.load_certificate(str(s.certificate_path))
        await server.load_private_key(s.private_key_path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load {s.certificate_path} / {s.private_key_path}: {e}", field="simulator") from e
    if s.trusted_client_certs_dir is not None:
        if not s.trusted_client_certs_dir.is_dir():
            raise ConfigError(
                f"no such folder: {s.trusted_client_certs_dir}", field="simulator.trusted_client_certs_dir"
            )
        store = TrustStore([s.trusted_client_certs_dir], [])
        await store.load()
        options = (
            CertificateValidatorOptions.TIME_RANGE
            | CertificateValidatorOptions.URI
            | CertificateValidatorOptions.TRUSTED
            | CertificateValidatorOptions.PEER_CLIENT
        )
        server.set_certificate_validator(CertificateValidator(options, store))
    return application_uri_of(cert) or DEFAULT_APPLICATION_URI


def _load_user_certificates(folder: Path) -> frozenset[bytes]:
    """The DER bytes of every *.der / *.pem certificate in ``folder`` (read once, at start)."""
    if not folder.is_dir():
        raise ConfigError(f"no such folder: {folder}", field="simulator.user_certificates_dir")
    out: set[bytes] = set()
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in (".der", ".pem"):
            data = path.read_bytes()
            try:
                cert = (
                    x509.load_pem_x509_certificate(data)
                    if b"-----BEGIN" in data
                    else x509.load_der_x509_certificate(data)
                )
            except ValueError as e:
                raise ConfigError(f"cannot read {path}: {e}", field="simulator.user_certificates_dir") from e
            out.add(cert.public_bytes(serialization.Encoding.DER))
    return frozenset(out)
