#!/usr/bin/python3
"""Make the seed corpus of the fuzz targets from the simulator's answers
(the API answers of each provider, its error bodies) and from what the
tests feed infrafs (configs, control writes, headers, cache files,
webhook deliveries). Run from a fuzz build:

    tests/fuzz/make_corpus.py BUILD-FUZZ-DIR [CORPUS-DIR]

A provider's target is run with INFRAFS_FUZZ_TRACE set: it prints each
request it makes. Each run that asks for one answer more than the script
holds gets that request's answer from the simulator, until a run asks for
nothing new, so the script holds the simulator's answers in the order the
provider asks for them (tests/fuzz/script_http.h says the format).
Seeds already in the corpus that this does not make (the findings kept
as regression tests) are left alone."""

import hashlib
import hmac
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "..", "contrib", "infrafs-sim")
SEPARATOR = b"\n%%infrafs-answer%%\n"
TOKEN = "demo-token"
USER = "demo@example.com"
WEBHOOK_SECRET = b"fuzz-webhook-secret"  # fuzz_webhook.c's


def auth_headers(provider, token=TOKEN):
    if provider == "deployhq":
        import base64
        basic = base64.b64encode(f"{USER}:{token}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    if provider == "dokploy":
        return {"x-api-key": token}
    return {"Authorization": f"Bearer {token}"}


def ask(url, method, provider, token=TOKEN):
    """The simulator's answer as a script record: b"STATUS TYPE\\nBODY"."""
    data = b"{}" if method != "GET" else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={**auth_headers(provider, token),
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, ctype, body = resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as e:
        status, ctype, body = e.code, e.headers.get("Content-Type"), e.read()
    return f"{status} {ctype or 'application/json'}\n".encode() + body


def traced_requests(target, records):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(SEPARATOR.join(records))
    try:
        out = subprocess.run([target, f.name], env={**os.environ, "INFRAFS_FUZZ_TRACE": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.unlink(f.name)
    return re.findall(r"^request (\S+) (\S+)$", out.stderr.decode(errors="replace"), re.M)


def provider_seeds(build, ports, provider):
    """The simulator's answers to one whole run of the provider's target,
    then variants whose first answer is the simulator's refusal of a wrong
    key, and whose last is an error."""
    target = os.path.join(build, "tests", "fuzz", f"fuzz_{provider}")
    origin = f"http://127.0.0.1:{ports[provider]}"
    records, asked = [], []
    while True:
        requests = traced_requests(target, records)
        if len(requests) <= len(records) or len(records) > 200:
            break
        method, where = requests[len(records)]
        url = where if re.match(r"https?://", where) else origin + where
        records.append(ask(url, method, provider))
        asked.append((method, url))
    seeds = {"sim-run": records}
    if asked:
        method, url = asked[0]
        seeds["sim-wrong-key"] = [ask(url, method, provider, token="wrong")] + records[1:]
        method, url = asked[-1]
        seeds["sim-not-found"] = records[:-1] + [ask(url + "-missing", method, provider)]
    if provider == "hostatlas":
        seeds["sim-run"] = records + [webhook_event("srv_1")]
    return {name: SEPARATOR.join(r) for name, r in seeds.items()}


def webhook_event(server, name="server.offline", delivery="del_test_1"):
    return json.dumps({"event": name, "delivery_id": delivery,
                       "timestamp": "2026-12-06T12:00:00Z",
                       "data": {"server": server, "previous_status": "online"}}).encode()


def signed(body):
    return b"sha256=" + hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest().encode()


def config_seeds(demo_config):
    text = open(demo_config, "rb").read()
    return {
        "demo": text,
        "every-key": (b"[hostup]\ntype = hostup\nurl = https://api.example.com\n"
                      b"token = abc\nrefresh = 60\ntimeout = 20\nmax_resources = 100\n"
                      b"rate_limit = 600/60\nrefresh_share = 50%\ndetail_concurrency = 2\n"
                      b"detail_max_age = 600\nevents_fields = status power_state\n"
                      b"cacert = /etc/ssl/certs/ca-certificates.crt\n"
                      b"[atlas]\ntype = hostatlas\nurl = http://127.0.0.1:1\ntoken = t\n"
                      b"webhook_listen = 127.0.0.1:9999\n"
                      b"webhook_secret_file = /nonexistent\n"),
        "token-file": b"[a]\ntype = heo\ntoken_file = /nonexistent\nvps = vps_1\n",
        "insecure": b"[a]\ntype = dokploy\nurl = http://10.0.0.1\ntoken = x\n"
                    b"insecure_http = true\n",
    }


def control_seeds():
    # The first byte picks the control file (fuzz_control.c); a spread of
    # them, with what users write.
    words = [b"restart\n", b"start", b"reset force\n", b"stop\n", b"1\n", b"shutdown",
             b"  reboot  \n", b"deploy\n", b"cancel\n"]
    return {f"write-{i}": bytes([i]) + w for i, w in enumerate(words)}


def header_seeds():
    return {
        "seconds": b"30\n600\n599\n1800000060\n",
        "http-date": b"Wed, 21 Oct 2015 07:28:00 GMT\n300\n0\n2026-12-06T12:00:00Z\n429",
        "fraction": b"\n60\n12\n1800000000.25\n",
    }


def answer_seeds(build_records):
    seeds = {
        "rfc7807": b'422 application/problem+json\n{"type":"about:blank","title":"Invalid",'
                   b'"detail":"name is required","code":"VALIDATION"}',
        "html": b"502 text/html\n<html><head><title>502 Bad Gateway</title></head></html>",
        "errors-list": b'400 application/json\n{"errors":[{"field":"name","message":"blank"},'
                       b'"too long"]}',
        "json-ok": b'200 application/json\n{"data":[{"id":"vps_1","name":"web"}]}',
    }
    for name, record in build_records.items():
        seeds[name] = record
    return seeds


def json_seeds():
    return {
        "object": b'\x03{"a":[1,2.5,"x\\u00e9",true,null,{"b":{}}],"c":"d/e"}',
        "deep": b"\x07" + b"[" * 40 + b"]" * 40,
        "strings": b'\x01["\\ud83d\\ude00","\\n\\t",""]',
    }


def webhook_seeds():
    seeds = {}
    for name, body in [("offline", webhook_event("srv_1")),
                       ("alert", json.dumps({"event": "alert.triggered",
                                             "delivery_id": "del_x"}).encode()),
                       ("unknown", b'{"event":"x.y"}')]:
        seeds[name] = signed(body) + b"\n" + body
    return seeds


def cache_seeds(build, ports, work):
    """Cache files a real mount of the simulator's HostUp account saved
    (the account name, type and url rewritten to fuzz_cache.c's)."""
    infrafs = os.path.join(build, "infrafs")
    config = os.path.join(work, "cache-config")
    mnt = os.path.join(work, "mnt")
    cache = os.path.join(work, "cache")
    os.makedirs(mnt, exist_ok=True)
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"[fuzz]\ntype = hostup\nurl = http://127.0.0.1:{ports['hostup']}\n"
                f"token = {TOKEN}\n")
    subprocess.run([infrafs, "-o", f"config={config},cache_dir={cache}", mnt], check=True,
                   timeout=60)
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(cache, "fuzz.json")):
                break
            time.sleep(0.1)
        time.sleep(1)
    finally:
        subprocess.run(["fusermount3", "-u", mnt], check=False)
    data = open(os.path.join(cache, "fuzz.json"), "rb").read()
    return {"saved": rewrite_cache_account(data, b"fuzz", b"hostup", b"http://127.0.0.1:9")}


def rewrite_cache_account(data, account, ptype, url):
    """Version 2: name[16], u32 version, u64 checksum, u64 length, i64 last
    refresh, u32 records, then str account, type, url (u32 length and
    bytes); fuzz_cache.c fills in length and checksum again."""
    at = 48
    fields = []
    for _ in range(3):
        (n,) = struct.unpack_from("<I", data, at)
        fields.append(data[at + 4:at + 4 + n])
        at += 4 + n
    head = data[:48]
    strs = b"".join(struct.pack("<I", len(s)) + s for s in (account, ptype, url))
    return head + strs + data[at:]


def write(corpus, target, seeds):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    corpus = sys.argv[2] if len(sys.argv) == 3 else os.path.join(HERE, "corpus")
    work = tempfile.mkdtemp(prefix="infrafs-corpus-")
    ports_file = os.path.join(work, "ports.json")
    demo_config = os.path.join(work, "demo-config")
    sim = subprocess.Popen(["/usr/bin/python3", SIM, "--free-ports", "--ports-file", ports_file,
                            "--demo-config", demo_config, "--quiet", "--vps-count", "3",
                            "--hostatlas-count", "3", "--deployhq-count", "3",
                            "--dokploy-count", "3", "--job-seconds", "0.2"])
    try:
        for _ in range(100):
            if os.path.exists(ports_file) and os.path.exists(demo_config):
                break
            time.sleep(0.1)
        ports = json.load(open(ports_file))
        first_answers = {}
        # Every provider the simulator has, that has a fuzz target.
        providers = [p for p in ports
                     if os.path.exists(os.path.join(build, "tests", "fuzz", f"fuzz_{p}"))]
        for provider in providers:
            seeds = provider_seeds(build, ports, provider)
            write(corpus, provider, seeds)
            for name, script in seeds.items():
                first_answers[f"{provider}-{name}"] = script.split(SEPARATOR)[0]
        write(corpus, "config", config_seeds(demo_config))
        write(corpus, "control", control_seeds())
        write(corpus, "headers", header_seeds())
        write(corpus, "answer", answer_seeds(first_answers))
        write(corpus, "json", json_seeds())
        write(corpus, "webhook", webhook_seeds())
        write(corpus, "cache", cache_seeds(build, ports, work))
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
