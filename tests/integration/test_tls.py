"""TLS through the real mount: the simulator serves HTTPS with certificates
the test makes with openssl, and infrafs accepts only the one it should:
signed by the CA that `cacert` names, for the host in `url`, not expired.
Plain http:// goes only to this machine unless insecure_http says the
network is trusted."""

import os
import socket
import subprocess

import pytest

from conftest import INFRAFS, hostup_config, write_config

REFUSED = r"refresh failed|mounted at .*\(hostup: error "


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, and certificates it signed: for 127.0.0.1, for another host,
    and one for 127.0.0.1 that has expired; one key for all."""
    d = tmp_path_factory.mktemp("certs")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=infrafs test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=infrafs test server")
    for name, san, days in (("good", "IP:127.0.0.1", "2"),
                            ("other", "DNS:other.example", "2"),
                            ("expired", "IP:127.0.0.1", "-1")):
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", days,
                "-extfile", f"{name}.ext")
    return {name: str(d / f"{name}.pem") for name in ("ca", "good", "other", "expired")} | {
        "key": str(d / "server.key")}


def https_sim(make_sim, certs, which):
    return make_sim(tls=(certs[which], certs["key"]))


def test_with_cacert_an_https_account_works(make_sim, make_mount, certs):
    sim = https_sim(make_sim, certs, "good")

    mnt = make_mount(hostup_config(sim, cacert=certs["ca"]))

    assert sim.url().startswith("https://")
    assert mnt.provider("state") == "ok\n"
    assert sorted(os.listdir(mnt.p("vps", "hostup"))) == sorted(sim.vps_ids())


@pytest.mark.parametrize("which, cacert, reason", [
    ("good", False, "unable to get local issuer certificate"),
    ("other", True, "no alternative certificate subject name matches target host name"),
    ("expired", True, "certificate has expired"),
], ids=["unknown-ca", "another-host", "expired"])
def test_a_certificate_infrafs_cannot_trust_fails_the_account_at_once(
        make_sim, make_mount, certs, which, cacert, reason):
    sim = https_sim(make_sim, certs, which)
    keys = {"cacert": certs["ca"]} if cacert else {}

    mnt = make_mount(hostup_config(sim, **keys))

    mnt.expect_stderr(REFUSED)
    assert mnt.provider("state") == "error\n"
    error = mnt.provider("last_error")
    assert "TLS certificate of " + sim.url() + " not accepted" in error
    assert reason in error and "check `url` and `cacert`" in error
    assert os.listdir(mnt.p("vps", "hostup")) == []
    # Refused at the handshake: the simulator never saw a request, and the
    # key never left (no retries either).
    assert sim.requests() == []


def this_machines_address():
    """An address of this machine other than loopback (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]


def test_plain_http_to_another_machine_needs_insecure_http(make_sim, make_mount, tmp_path):
    address = this_machines_address()
    if address.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    sim = make_sim("--bind", "0.0.0.0")
    url = f"http://{address}:{sim.ports['hostup']}"
    config = write_config(tmp_path / "config",
                          hostup_config(sim).replace(sim.url(), url))
    mnt = tmp_path / "refused"
    mnt.mkdir()

    out = subprocess.run([INFRAFS, "-f", "-o", f"config={config}", str(mnt)],
                         capture_output=True, text=True, timeout=30)

    assert out.returncode != 0
    assert "plain http:// to another machine" in out.stderr
    assert "insecure_http = true" in out.stderr
    assert sim.requests() == []

    trusted = make_mount(hostup_config(sim, insecure_http="true").replace(sim.url(), url))
    trusted.expect_stderr(r"plain HTTP to another machine: the account's key travels "
                          r"unencrypted \(insecure_http = true\)")
    assert trusted.provider("state") == "ok\n"
    assert trusted.provider("url") == url + "\n"
