#!/usr/bin/python3
"""HTTP/2 against HTTP/1.1 (issue 14): the same refresh over TLS, both ways.

    tests/bench/http2.py [--servers N] [--runs R]

The simulator speaks HTTP/1.1 in the clear, so nghttpx (Debian's
nghttp2-proxy: apt install nghttp2-proxy) puts TLS in front of it, with a
certificate from a CA made for the run, offering in ALPN either h2 and
http/1.1 or http/1.1 alone. infrafs mounts a HostAtlas account of N
servers (default 2,000) through it, with detail_max_age = 0 so that every
refresh reads every server's detail (N + 3 requests, 4 at a time) and with
its rate limit out of the way. For each protocol it prints the median of R
asked refreshes (`echo 1 > refresh`, default 5), the protocol nghttpx saw
and how many connections infrafs opened to it.

No exit code says pass or fail; everything it started is stopped and its
temporary directory removed on any exit. Environment: INFRAFS_BIN (default
build/infrafs), INFRAFS_SIM (default contrib/infrafs-sim).
"""

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOKEN = "bench-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.1)


def make_certificates(d):
    """A CA and a certificate for 127.0.0.1 that it signed; returns the
    paths of the CA, the key and the certificate."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca, key, csr, cert = (os.path.join(d, n) for n in
                                  ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=infrafs bench CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext)
    return ca, key, cert


def measure(args, d, sim_port, certs, alpn):
    """One protocol: nghttpx offering `alpn`, a mount through it, R
    refreshes. Returns (seconds of each refresh, Counter of protocols,
    connections, requests)."""
    ca, key, cert = certs
    port = free_port()
    tag = "h2" if alpn.startswith("h2") else "h1"  # no ',' in a mountpoint
    access = os.path.join(d, f"access-{tag}.log")
    front = subprocess.Popen(
        ["nghttpx", f"--frontend=127.0.0.1,{port}", f"--backend=127.0.0.1,{sim_port}",
         f"--npn-list={alpn}", "--workers=1", "--no-ocsp", "--log-level=WARN",
         f"--accesslog-file={access}",
         "--accesslog-format=$remote_port $alpn $status", key, cert],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "nghttpx.log"), "a"))
    mnt = os.path.join(d, f"mnt-{tag}")
    os.mkdir(mnt)
    config = os.path.join(d, f"config-{tag}")
    with open(config, "w") as f:
        f.write(f"[atlas]\ntype = hostatlas\nurl = https://127.0.0.1:{port}\n"
                f"token = {TOKEN}\ncacert = {ca}\nrefresh = 3600\ndetail_max_age = 0\n"
                f"rate_limit = 1000000/1\n")
    os.chmod(config, 0o600)
    mount = None
    try:
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, "nghttpx")
        infrafs = os.environ.get("INFRAFS_BIN", os.path.join(TOP, "build", "infrafs"))
        mount = subprocess.Popen([infrafs, "-f", "-o", f"config={config}", "-o",
                                  f"cache_dir={d}/cache-{port}", mnt],
                                 stderr=open(os.path.join(d, "infrafs.log"), "a"))
        wait_until(lambda: os.path.exists(os.path.join(mnt, "providers", "atlas", "state")),
                   "the mount", timeout=300)
        state = os.path.join(mnt, "providers", "atlas", "state")
        wait_until(lambda: open(state).read() == "ok\n", "the first refresh", timeout=300)
        seconds = []
        for _ in range(args.runs):
            start = time.monotonic()
            with open(os.path.join(mnt, "providers", "atlas", "refresh"), "w") as f:
                f.write("1\n")
            seconds.append(time.monotonic() - start)
    finally:
        if mount:
            subprocess.run(["fusermount3", "-u", mnt])
            mount.wait(timeout=30)
        front.send_signal(signal.SIGQUIT)  # graceful: the access log is flushed
        try:
            front.wait(timeout=10)
        except subprocess.TimeoutExpired:
            front.kill()
    protocols, ports, requests = collections.Counter(), set(), 0
    with open(access) as f:
        for line in f:
            remote_port, proto, _ = line.split()
            protocols[proto] += 1
            ports.add(remote_port)
            requests += 1
    return seconds, protocols, len(ports), requests


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if not shutil.which("nghttpx"):
        sys.exit("needs nghttpx: apt install nghttp2-proxy")
    d = tempfile.mkdtemp(prefix="infrafs-http2-")
    sim = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        ports_file = os.path.join(d, "ports.json")
        sim = subprocess.Popen(
            ["/usr/bin/python3", os.environ.get("INFRAFS_SIM", os.path.join(
                TOP, "contrib", "infrafs-sim")), "--free-ports", "--token", TOKEN,
             "--ports-file", ports_file, "--quiet", "--hostatlas-count", str(args.servers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(ports_file), "the simulator")
        time.sleep(0.2)
        with open(ports_file) as f:
            sim_port = json.load(f)["hostatlas"]
        body = json.dumps({"hostatlas": {"rate_limit": {"limit": 1_000_000_000, "window_s": 1},
                                         "max_per_page": 100}}).encode()
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{sim_port}/_sim/config", data=body, method="POST",
            headers={"Content-Type": "application/json"}), timeout=10).read()
        certs = make_certificates(d)
        with open("/proc/loadavg") as f:
            print(f"HTTP/2 against HTTP/1.1: {args.servers} HostAtlas servers, "
                  f"{args.servers + 3} requests a refresh, {args.runs} refreshes each; "
                  f"load average {' '.join(f.read().split()[:3])}")
        for alpn in ("h2,http/1.1", "http/1.1"):
            seconds, protocols, connections, requests = measure(args, d, sim_port, certs, alpn)
            print(f"  offered {alpn:12} used {dict(protocols)}: refresh median "
                  f"{statistics.median(seconds):.2f} s (min {min(seconds):.2f}, max "
                  f"{max(seconds):.2f}); {connections} connections for {requests} requests")
    finally:
        if sim:
            sim.terminate()
            sim.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
