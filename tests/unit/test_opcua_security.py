"""OPC-UA security without a server: settings rules, ``make-cert``, missing files (the connections
themselves are in tests/integration/test_opcua_security.py and test_opcua_node_peer.py)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import ValidationError

from sentinelle.cli import EXIT_CONFIG, EXIT_OK, main
from sentinelle.errors import ConfigError
from sentinelle.settings import OpcUaSourceSettings, SimulatorSettings
from sentinelle.sources.opcua_security import ClientSecurity, application_uri_of, make_certificate


def secured(tmp_path: Path, **over: Any) -> OpcUaSourceSettings:
    base: dict[str, Any] = {
        "security_policy": "Basic256Sha256",
        "certificate_path": tmp_path / "cert.der",
        "private_key_path": tmp_path / "key.pem",
        "trusted_server_certs_dir": tmp_path,
    }
    return OpcUaSourceSettings(**(base | over))


@pytest.mark.parametrize("missing", ["certificate_path", "private_key_path", "trusted_server_certs_dir"])
def test_a_secured_policy_needs_certificate_key_and_trust_folder(tmp_path: Path, missing: str) -> None:
    with pytest.raises(ValidationError, match=f"{missing}: required with security_policy 'Basic256Sha256'"):
        secured(tmp_path, **{missing: None})


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"user_certificate_path": "u.der"}, "set both or neither"),
        (
            {"user_certificate_path": "u.der", "user_private_key_path": "u.pem", "username": "a"},
            "one user identity token",
        ),
    ],
)
def test_contradictory_user_tokens_are_refused(tmp_path: Path, over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        secured(tmp_path, **over)


def test_an_x509_user_token_needs_a_secured_policy() -> None:
    with pytest.raises(ValidationError, match="needs a security_policy other than None"):
        OpcUaSourceSettings(user_certificate_path=Path("u.der"), user_private_key_path=Path("u.pem"))


def test_simulator_secured_endpoints_need_trusted_client_certs(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="trusted_client_certs_dir: required"):
        SimulatorSettings(
            security_policies=("Basic256Sha256",), certificate_path=tmp_path / "c", private_key_path=tmp_path / "k"
        )


def test_make_certificate_binds_the_application_uri_and_host_names(tmp_path: Path) -> None:
    cert = make_certificate(
        tmp_path / "c.der", tmp_path / "k.pem", application_uri="urn:plant:sentinelle", hostnames=["localhost"]
    )
    assert application_uri_of(cert) == "urn:plant:sentinelle"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", socket.gethostname()} <= set(san.get_values_for_type(x509.DNSName))
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage and ExtendedKeyUsageOID.SERVER_AUTH not in usage
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert x509.load_der_x509_certificate((tmp_path / "c.der").read_bytes()) == cert


def test_make_certificate_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("an existing key")
    with pytest.raises(ConfigError, match="exists"):
        make_certificate(tmp_path / "c.der", tmp_path / "k.pem")
    assert (tmp_path / "k.pem").read_text() == "an existing key"
    assert not (tmp_path / "c.der").exists()


def test_make_cert_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["make-cert", "--cert", str(tmp_path / "c.der"), "--key", str(tmp_path / "k.pem")]
    assert main([*args, "--server"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "urn:sentinelle:sim:server" in out and "SHA-1 thumbprint" in out
    assert main(args) == EXIT_CONFIG
    assert "not overwriting" in capsys.readouterr().err


def test_missing_certificate_or_trust_folder_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    make_certificate(tmp_path / "cert.der", tmp_path / "key.pem")
    ClientSecurity(secured(tmp_path))  # all present
    with pytest.raises(ConfigError, match=r"sources\.plant\.private_key_path: no such file"):
        ClientSecurity(secured(tmp_path, private_key_path=tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match=r"sources\.plant\.trusted_server_certs_dir: no such folder"):
        ClientSecurity(secured(tmp_path, trusted_server_certs_dir=tmp_path / "nope"))
