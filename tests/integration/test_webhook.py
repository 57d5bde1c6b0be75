"""HostAtlas webhooks: a listener per account (webhook_listen,
webhook_secret_file) that checks each POST's HMAC-SHA256 signature, answers
at once, and reads again only the resource it names, so that the tree and
/events change within a second with no list request. Forged, replayed and
oversized deliveries change nothing."""

import hashlib
import hmac
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest

from conftest import account_config, wait_for, write_config

SECRET = "whsec-test-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hostatlas_with_webhook(sim, tmp_path, port, **keys):
    secret_file = write_config(tmp_path / "webhook.secret", SECRET + "\n")
    return account_config(sim, "hostatlas", "hostatlas", refresh=300,
                          webhook_listen=f"127.0.0.1:{port}",
                          webhook_secret_file=secret_file, **keys)


def admin(sim, method, path, body=None):
    return sim.admin(method, "/_sim/hostatlas" + path, body, provider="hostatlas")


def post(port, body, signature=None, delivery=None, secret=SECRET, method="POST"):
    """Our own delivery, as HostAtlas would send it; (status, answer)."""
    headers = {"Content-Type": "application/json"}
    if signature is None:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if signature:
        headers["X-HostAtlas-Signature"] = signature
    if delivery:
        headers["X-HostAtlas-Delivery"] = delivery
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body if method == "POST"
                                 else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def event(server, name="server.offline", delivery="del_test_1"):
    return json.dumps({"event": name, "delivery_id": delivery,
                       "timestamp": "2026-12-06T12:00:00Z",
                       "data": {"server": server, "previous_status": "online"}}).encode()


def hostatlas_requests(sim):
    return [r for r in sim.requests() if r["provider"] == "hostatlas"]


@pytest.fixture
def hooked(fresh_sim, make_mount, tmp_path):
    port = free_port()
    m = make_mount(hostatlas_with_webhook(fresh_sim, tmp_path, port))
    admin(fresh_sim, "POST", "/webhooks", {"url": f"http://127.0.0.1:{port}/hook",
                                           "secret": SECRET})
    yield m, port
    admin(fresh_sim, "DELETE", "/webhooks")


def test_a_signed_webhook_updates_the_tree_within_a_second_without_a_list(fresh_sim, hooked):
    m, port = hooked
    server_id = str(admin(fresh_sim, "GET", "/servers")["ids"][0])
    status = m.p("servers", "hostatlas", server_id, "status")
    assert open(status).read() == "online\n"
    fresh_sim.clear_requests()

    start = time.monotonic()
    admin(fresh_sim, "PATCH", f"/servers/{server_id}", {"status": "offline"})
    (delivery,) = admin(fresh_sim, "GET", "/webhooks")["deliveries"]
    assert (delivery["event"], delivery["status"]) == ("server.offline", 202), delivery
    wait_for(lambda: open(status).read() == "offline\n", timeout=1.0, interval=0.01,
             what="the pushed status in the tree")
    took = time.monotonic() - start

    sent = [(r["method"], r["path"]) for r in hostatlas_requests(fresh_sim)]
    assert sent == [("GET", f"/api/v1/servers/{server_id}")], sent
    assert any(line.split("\t")[1:] == [f"servers/hostatlas/{server_id}", "status", "online",
                                        "offline"] for line in m.read("events").splitlines())
    print(f"webhook to tree: {took * 1000:.0f} ms")


def test_forged_replayed_oversized_and_wrong_deliveries_change_nothing(fresh_sim, hooked):
    m, port = hooked
    server_id = str(admin(fresh_sim, "GET", "/servers")["ids"][1])
    server = admin(fresh_sim, "GET", f"/servers/{server_id}")
    m.expect_stderr(r"webhook refused")
    fresh_sim.clear_requests()

    # Forged: signed with another secret, or not signed at all.
    assert post(port, event(server), secret="not-the-secret")[0] == 401
    assert post(port, event(server), signature="")[0] == 401
    assert post(port, event(server), signature="sha256=" + "0" * 64)[0] == 401
    # Not an event, not a POST, too large.
    assert post(port, b"[1, 2]")[0] == 400
    assert post(port, b"", method="GET")[0] == 405
    big = json.dumps({"event": "server.offline", "pad": "x" * 300_000}).encode()
    assert post(port, big)[0] == 413
    assert hostatlas_requests(fresh_sim) == [], "a refused delivery reached the API"

    # Replayed: the first is read again, the retry only acknowledged.
    assert post(port, event(server, delivery="del_replay"), delivery="del_replay")[0] == 202
    wait_for(lambda: len(hostatlas_requests(fresh_sim)) == 1, what="the one re-read")
    assert post(port, event(server, delivery="del_replay"), delivery="del_replay") == \
        (200, "delivery seen before, ignored\n")
    # An event about nothing the tree shows is acknowledged and ignored.
    assert post(port, json.dumps({"event": "alert.triggered", "delivery_id": "del_x",
                                  "data": {}}).encode())[0] == 200
    time.sleep(0.3)
    assert len(hostatlas_requests(fresh_sim)) == 1


def test_an_incident_created_and_resolved_is_pushed(fresh_sim, hooked):
    m, port = hooked
    incident = admin(fresh_sim, "POST", "/incidents", {"title": "Pushed incident"})
    path = m.p("incidents", "hostatlas", str(incident["id"]), "title")
    wait_for(lambda: os.path.exists(path) and open(path).read() == "Pushed incident\n",
             timeout=1.0, interval=0.01, what="the new incident in the tree")
    admin(fresh_sim, "PATCH", f"/incidents/{incident['id']}", {"status": "resolved"})
    wait_for(lambda: m.read("incidents", "hostatlas", str(incident["id"]), "status") ==
             "resolved\n", timeout=1.0, interval=0.01, what="the resolved incident")
    assert [d["status"] for d in admin(fresh_sim, "GET", "/webhooks")["deliveries"]] == \
        [202, 202]


def test_webhook_keys_that_are_wrong_stop_the_mount_with_the_fix(fresh_sim, daemons, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    secret_file = write_config(tmp_path / "webhook.secret", SECRET + "\n")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cases = [
        (f"webhook_listen = 127.0.0.1:{free_port()}\n",
         "webhooks need both webhook_listen and webhook_secret_file"),
        (f"webhook_listen = localhost:80\nwebhook_secret_file = {secret_file}\n",
         "is not ADDRESS:PORT with a numeric address"),
        (f"webhook_listen = 127.0.0.1:{busy.getsockname()[1]}\n"
         f"webhook_secret_file = {secret_file}\n", "cannot listen for webhooks on"),
    ]
    try:
        for keys, said in cases:
            config = write_config(tmp_path / "config",
                                  account_config(fresh_sim, "hostatlas", "hostatlas") + keys)
            out, _ = daemons.run(["-o", f"config={config}", str(mnt)], str(mnt))
            assert out.returncode != 0 and said in out.stderr, (keys, out.stderr)
            assert not os.path.ismount(mnt)
        os.chmod(secret_file, 0o644)
        config = write_config(tmp_path / "config", account_config(fresh_sim, "hostatlas",
                              "hostatlas") + f"webhook_listen = 127.0.0.1:{free_port()}\n"
                              f"webhook_secret_file = {secret_file}\n")
        out, _ = daemons.run(["-o", f"config={config}", str(mnt)], str(mnt))
        assert out.returncode != 0 and "chmod 600" in out.stderr, out.stderr
    finally:
        busy.close()


def test_an_offline_mount_listens_for_nothing(fresh_sim, make_mount, tmp_path):
    port = free_port()
    m = make_mount(hostatlas_with_webhook(fresh_sim, tmp_path, port), ["offline"])
    assert m.provider("state", account="hostatlas") == "offline\n"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "offline, yet listening"
