"""TLS contexts from files (trustme CA), TLS >= 1.2, reload keeps the old on failure.

The handshakes run over in-memory BIOs: real TLS, no sockets.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from signaling.transport.tls import Certificates


def _files(ca: trustme.CA, tmp: Path, name: str = "server") -> tuple[str, str]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        with cert_file.open("ab") as f:
            f.write(extra.bytes())
    return str(cert_file), str(key_file)


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, sni: str | None = "localhost"
) -> bytes:
    """Run a TLS handshake in memory; return the server certificate (DER) the client saw."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, obj, out, peer_in in (("c", client, c_out, s_in), ("s", server, s_out, c_in)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            cert = client.getpeercert(binary_form=True)
            assert cert is not None
            return cert
    raise AssertionError("handshake did not finish")


def test_serves_the_certificate_and_reloads_it(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert_file, key_file = _files(ca, tmp_path)
    certs = Certificates(cert_file, key_file)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    first = handshake(certs.listener, client)

    # Renewal: new files at the same paths, then SIGHUP -> reload().
    cert_file2, key_file2 = _files(ca, tmp_path, "renewed")
    Path(cert_file).write_bytes(Path(cert_file2).read_bytes())
    Path(key_file).write_bytes(Path(key_file2).read_bytes())
    assert certs.reload()
    second = handshake(certs.listener, client)
    assert second != first
    assert handshake(certs.listener, client, sni=None) == second  # no SNI: same cert


def test_failed_reload_keeps_serving_the_old_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert_file, key_file = _files(ca, tmp_path)
    certs = Certificates(cert_file, key_file)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    before = handshake(certs.listener, client)
    Path(key_file).write_text("half-written")
    assert not certs.reload()
    assert handshake(certs.listener, client) == before


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_1_is_refused(tmp_path: Path) -> None:
    ca = trustme.CA()
    certs = Certificates(*_files(ca, tmp_path))
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(old)
    try:
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    except ValueError:  # pragma: no cover - the local OpenSSL cannot even offer TLS 1.1
        pytest.skip("OpenSSL without TLS 1.1")
    with pytest.raises(ssl.SSLError):
        handshake(certs.listener, old)


def test_untrusted_client_rejects_the_certificate(tmp_path: Path) -> None:
    certs = Certificates(*_files(trustme.CA(), tmp_path))
    client = ssl.create_default_context()
    trustme.CA().configure_trust(client)  # a different CA
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(certs.listener, client)
