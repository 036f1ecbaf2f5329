"""OPC-UA security for the live source: policy and mode, certificates, the server's trust, user tokens.

What a plant server expects of a client (OPC 10000-2/-4/-6):

* a secured channel — a security policy (Basic256Sha256, Aes128_Sha256_RsaOaep,
  Aes256_Sha256_RsaPss) in mode Sign or SignAndEncrypt — for which the client presents
  its own *application instance certificate*; the server admin has to trust it;
* the server's certificate, which the client has to check as well.  asyncua alone takes
  whatever certificate the endpoint list announces (trust on first use, silently), so
  :class:`ClientSecurity` installs a validator over a folder of trusted certificates and
  the session is refused before any password or user token is sent;
* a user identity: anonymous, user name and password (encrypted with the server's key
  under a secured policy), or an X.509 user certificate.

asyncua's failures are turned into :class:`~sentinelle.errors.SourceError` with a message an
admin can act on (:func:`explain`); nothing of asyncua leaves this package.

:func:`make_certificate` writes a self-signed application certificate whose SubjectAltName
carries the application URI and host names, as OPC-UA requires (``sentinelle make-cert``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.utils import ServiceError
from asyncua.crypto import security_policies, uacrypto
from asyncua.crypto.cert_gen import generate_private_key, generate_self_signed_app_certificate
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.ua.status_codes import StatusCodes, get_name_and_doc
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import ConfigError, SourceError
from ..settings import OpcUaSecurityPolicy, OpcUaSourceSettings

__all__ = [
    "CLIENT_APPLICATION_URI",
    "POLICY_CLASSES",
    "ClientSecurity",
    "SecurityRefused",
    "application_uri_of",
    "describe_certificate",
    "make_certificate",
    "server_policy_types",
]

CLIENT_APPLICATION_URI: Final = "urn:sentinelle:client"
"""Default application URI of the daemon; the certificate's SubjectAltName must carry the one sent."""

POLICY_CLASSES: Final[dict[str, type[security_policies.SecurityPolicy]]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_POLICY_NAME_BY_URI: Final = {cls.URI: name for name, cls in POLICY_CLASSES.items()} | {
    security_policies.SecurityPolicyNone.URI: "None"
}

_SERVER_VALIDATION: Final = (
    CertificateValidatorOptions.TIME_RANGE
    | CertificateValidatorOptions.URI
    | CertificateValidatorOptions.TRUSTED
    | CertificateValidatorOptions.REVOKED
    | CertificateValidatorOptions.PEER_SERVER
)
"""Time range, the application URI in the SubjectAltName, trusted (directly or by a CA), not revoked.
Key usages are not checked: several server stacks issue certificates without non-repudiation."""

_USER_REJECTED: Final = frozenset(
    {
        StatusCodes.BadUserAccessDenied,
        StatusCodes.BadIdentityTokenInvalid,
        StatusCodes.BadIdentityTokenRejected,
        StatusCodes.BadUserSignatureInvalid,
    }
)
_CLIENT_CERT_REJECTED: Final = frozenset(
    {
        StatusCodes.BadCertificateUntrusted,
        StatusCodes.BadSecurityChecksFailed,
        StatusCodes.BadCertificateInvalid,
        StatusCodes.BadCertificateUriInvalid,
        StatusCodes.BadCertificateUseNotAllowed,
        StatusCodes.BadCertificateTimeInvalid,
        StatusCodes.BadCertificateRevoked,
        StatusCodes.BadCertificateIssuerRevocationUnknown,
        StatusCodes.BadCertificateRevocationUnknown,
    }
)


class SecurityRefused(SourceError):
    """The connection was refused for a security reason; the message says what to change."""


def server_policy_types(policies: Sequence[OpcUaSecurityPolicy]) -> list[ua.SecurityPolicyType]:
    """asyncua's server endpoint types for the configured policies, each secured one in both modes.

    >>> [t.name for t in server_policy_types(["None", "Basic256Sha256"])]
    ['NoSecurity', 'Basic256Sha256_Sign', 'Basic256Sha256_SignAndEncrypt']
    """
    out: list[ua.SecurityPolicyType] = []
    for policy in policies:
        if policy == "None":
            out.append(ua.SecurityPolicyType.NoSecurity)
            continue
        stem = policy.replace("_", "")
        out += [ua.SecurityPolicyType[f"{stem}_Sign"], ua.SecurityPolicyType[f"{stem}_SignAndEncrypt"]]
    return out


def application_uri_of(cert: x509.Certificate) -> str | None:
    """The first URI in the certificate's SubjectAltName: the application URI OPC-UA binds it to."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()  # OPC-UA thumbprints are SHA-1


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _check_files(settings: OpcUaSourceSettings) -> None:
    """A missing certificate, key or trust folder is a configuration error (exit 78), found at start."""
    field = f"sources.{settings.name}"
    for name in ("certificate_path", "private_key_path", "user_certificate_path", "user_private_key_path"):
        path: Path | None = getattr(settings, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"no such file: {path}", field=f"{field}.{name}")
    trust = settings.trusted_server_certs_dir
    if trust is not None and not trust.is_dir():
        raise ConfigError(f"no such folder: {trust}", field=f"{field}.trusted_server_certs_dir")


class _TrustValidator:
    """Checks the server's certificate against the trust folder; remembers what it refused and why."""

    def __init__(self, store: TrustStore) -> None:
        self._validator = CertificateValidator(_SERVER_VALIDATION, store)
        self.refused: tuple[x509.Certificate, int] | None = None

    async def __call__(self, cert: x509.Certificate, server: ua.ApplicationDescription) -> None:
        try:
            await self._validator.validate(cert, server)
        except ServiceError as e:
            self.refused = (cert, e.code)
            raise


class ClientSecurity:
    """The security settings of one source, applied to each new asyncua ``Client``.

    Loads the trust folder at every connection (a certificate the admin adds is
    taken at the next retry, without a restart).
    """

    def __init__(self, settings: OpcUaSourceSettings) -> None:
        _check_files(settings)
        self._s = settings
        self._validator: _TrustValidator | None = None
        self._pairs: dict[tuple[Path, Path], tuple[tuple[int, int], x509.Certificate, Any]] = {}

    @property
    def secured(self) -> bool:
        return self._s.security_policy != "None"

    async def apply(self, client: Client) -> None:
        """Configure ``client`` (before ``connect``): channel security, server trust, user token.

        Asks the server for its endpoints (one short unsecured request, as every client
        does) to find the one with our policy and mode; raises :class:`SecurityRefused`
        when there is none.
        """
        s = self._s
        self._validator = None
        if s.username is not None:
            client.set_user(s.username)
        if s.password is not None:
            client.set_password(s.password.get_secret_value())
        if s.security_policy == "None":
            return
        assert s.certificate_path and s.private_key_path and s.trusted_server_certs_dir  # by the settings validator
        policy = POLICY_CLASSES[s.security_policy]
        mode = ua.MessageSecurityMode[s.security_mode]
        cert, key = await self._load_pair(s.certificate_path, s.private_key_path)
        uri = application_uri_of(cert)
        if uri is None:
            raise SecurityRefused(
                f"client certificate {s.certificate_path} has no application URI in its SubjectAltName "
                "(make one with `sentinelle make-cert`)"
            )
        client.application_uri = uri
        endpoints = await client.connect_and_get_server_endpoints()
        endpoint = next(
            (ep for ep in endpoints if ep.SecurityPolicyUri == policy.URI and ep.SecurityMode == mode),
            None,
        )
        if endpoint is None:
            offered = sorted(
                {
                    f"{_POLICY_NAME_BY_URI.get(ep.SecurityPolicyUri, ep.SecurityPolicyUri)}/{ep.SecurityMode.name}"
                    for ep in endpoints
                }
            )
            raise SecurityRefused(
                f"the server does not offer {s.security_policy}/{s.security_mode} (it offers: {', '.join(offered)})"
            )
        server_der = _first_certificate(endpoint.ServerCertificate)
        server_cert = x509.load_der_x509_certificate(server_der)
        store = TrustStore([s.trusted_server_certs_dir], [])
        try:
            await store.load()
        except ValueError as e:  # an empty folder ("can't create an empty store") or an unreadable file
            raise SecurityRefused(self._untrusted(server_cert, f"trust folder unusable: {e}")) from None
        # Checked now, before any key is used, and again by asyncua at CreateSession (the
        # certificate the session presents must be this one, and trusted).
        self._validator = _TrustValidator(store)
        client.certificate_validator = self._validator
        try:
            await self._validator(server_cert, endpoint.Server)
        except ServiceError:
            reason = self.explain(SecurityRefused("server certificate refused"))
            raise SecurityRefused(reason or "server certificate refused") from None
        # What Client.set_security does, with the key loaded once instead of at every connect.
        channel_policy = policy(server_cert, cert, key, mode)
        client.security_policy = channel_policy  # type: ignore[assignment]  # asyncua annotates it too narrowly
        client.uaclient.set_security(channel_policy)
        if s.user_certificate_path is not None and s.user_private_key_path is not None:
            client.user_certificate, client.user_private_key = await self._load_pair(
                s.user_certificate_path, s.user_private_key_path
            )

    async def _load_pair(self, cert_path: Path, key_path: Path) -> tuple[x509.Certificate, Any]:
        """A certificate and its key, cached until either file changes.

        Parsing an RSA key checks it, ~150 ms of CPU on our machines: three times the rest of a
        secured connect, paid at every reconnect without the cache.
        """
        try:
            stamp = (os.stat(cert_path).st_mtime_ns, os.stat(key_path).st_mtime_ns)
            cached = self._pairs.get((cert_path, key_path))
            if cached is not None and cached[0] == stamp:
                return cached[1], cached[2]
            cert = await uacrypto.load_certificate(cert_path)
            password = self._s.private_key_password
            key = await uacrypto.load_private_key(key_path, password.get_secret_value() if password else None)
        except (ValueError, TypeError, OSError) as e:
            raise SecurityRefused(f"cannot load {cert_path} or {key_path}: {type(e).__name__}: {e}") from None
        self._pairs[(cert_path, key_path)] = (stamp, cert, key)
        return cert, key

    def _untrusted(self, cert: x509.Certificate, detail: str | None = None) -> str:
        what = f"{_subject(cert)}, SHA-1 thumbprint {_fingerprint(cert)}" + (f"; {detail}" if detail else "")
        return (
            f"server certificate not trusted ({what}): after checking its thumbprint with the "
            f"server's admin, put it in {self._s.trusted_server_certs_dir}"
        )

    def explain(self, e: BaseException) -> str | None:
        """A clear reason when ``e`` (raised by connect) is a security refusal; None otherwise."""
        s = self._s
        if self._validator is not None and self._validator.refused is not None:
            cert, code = self._validator.refused
            self._validator.refused = None
            what = f"{_subject(cert)}, SHA-1 thumbprint {_fingerprint(cert)}"
            if code == StatusCodes.BadCertificateUntrusted:
                return self._untrusted(cert)
            if code == StatusCodes.BadCertificateRevoked:
                return f"server certificate revoked ({what})"
            if code == StatusCodes.BadCertificateTimeInvalid:
                return f"server certificate expired or not yet valid ({what}, valid until {cert.not_valid_after_utc})"
            if code == StatusCodes.BadCertificateUriInvalid:
                return f"server certificate's application URI does not match the server's ({what})"
            return f"server certificate refused: {_code_name(code)} ({what})"
        status = _status_code(e)
        if status is None and self.secured and isinstance(e, AssertionError) and _raised_in(e, "open_secure_channel"):
            return (
                f"server refused to open a secure channel ({s.security_policy}/{s.security_mode}) with our client "
                f"certificate {s.certificate_path}; most often it does not trust it: the server's admin must trust it "
                "(many servers keep refused certificates in a 'rejected' folder)"
            )
        if status is None:
            if isinstance(e, UaError) and "No matching endpoints" in str(e):
                return f"the server does not offer {s.security_policy}/{s.security_mode}"
            return None
        code = status
        if code in _USER_REJECTED:
            if s.username is not None:
                return f"server refused user {s.username!r} ({_code_name(code)}): wrong user name or password?"
            if s.user_certificate_path is not None:
                return (
                    f"server refused the user certificate {s.user_certificate_path} ({_code_name(code)}): "
                    "is it mapped to a user on the server?"
                )
            return f"server refused an anonymous session ({_code_name(code)}): set username and password"
        if code in _CLIENT_CERT_REJECTED and self.secured:
            return (
                f"server refused our client certificate {s.certificate_path} ({_code_name(code)}): "
                "the server's admin must trust it (copy it into the server's trusted certificates)"
            )
        return None


def _first_certificate(der: bytes | None) -> bytes:
    """The server's own certificate out of the endpoint's (possibly chained) DER blob.

    A DER certificate is a SEQUENCE with a two-byte long-form length (bytes 2-3).
    """
    if not der or len(der) < 4:
        raise SecurityRefused("the server's secured endpoint carries no certificate")
    return bytes(der[: int.from_bytes(der[2:4], "big") + 4])


def _code_name(code: int) -> str:
    return get_name_and_doc(code)[0]


def _raised_in(e: BaseException, function: str) -> bool:
    """Whether ``function`` is on the traceback of ``e``."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == function:
            return True
        tb = tb.tb_next
    return False


def _status_code(e: BaseException) -> int | None:
    if isinstance(e, UaStatusCodeError):
        return int(e.code)
    if isinstance(e, ServiceError):
        return int(e.code)
    return None


def make_certificate(
    cert_path: Path,
    key_path: Path,
    *,
    application_uri: str = CLIENT_APPLICATION_URI,
    hostnames: Sequence[str] = (),
    common_name: str = "sentinelle",
    days: int = 730,
    server: bool = False,
) -> x509.Certificate:
    """Write a self-signed OPC-UA application certificate (DER) and its RSA-2048 key (PEM, mode 0600).

    The SubjectAltName carries ``application_uri`` (which OPC-UA binds the application
    to), the host names and this host's name and, for ``127.0.0.1``/``localhost``,
    the loopback address.  Existing files are not overwritten (:class:`ConfigError`).
    """
    for path in (cert_path, key_path):
        if path.exists():
            raise ConfigError(f"{path} exists; not overwriting a certificate or key")
    # This host's name always: asyncua warns at every connect when its own certificate lacks it.
    names = [*hostnames, *([] if socket.gethostname() in hostnames else [socket.gethostname()])]
    alt: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    alt += [x509.DNSName(n) for n in names]
    if "localhost" in names or "127.0.0.1" in names:
        alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    key = generate_private_key()
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = generate_self_signed_app_certificate(key, common_name, {}, alt, usage, days=days)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return cert


def describe_certificate(cert: x509.Certificate) -> str:
    """One line for logs and the CLI: subject, application URI, validity and SHA-1 thumbprint."""
    until = cert.not_valid_after_utc.astimezone(dt.UTC).date().isoformat()
    return f"{_subject(cert)}, {application_uri_of(cert)}, valid until {until}, SHA-1 thumbprint {_fingerprint(cert)}"
