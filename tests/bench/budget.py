#!/usr/bin/python3
"""infrafs request budget benchmark (issue 14): the API's rate limits kept.

    tests/bench/budget.py [--minutes M] [--big N] [--details N]

Two simulators, their rate limits enforced as they are by default (HostUp
600 requests a minute per key, HEO 300, HostAtlas 600 with X-RateLimit-*):
one serves --big HostUp VPSes (default 100,000: 1,000 list pages, more than
a minute's budget), the other --details VPSes (default 5,000) read with
their details (detail_limit raised), a HostAtlas account and a HEO one.
Every account has refresh = 60 and the default refresh_share (50 %).

infrafs is mounted with an empty cache and runs for --minutes (default 10)
while one thread walks parts of the tree every few seconds and another
writes `restart` to a running VPS's power file every 10 s, alternating
between the two HostUp accounts (the large one once its VPSes are listed).
Printed at the end:

  - 429 answers, from the simulators' request logs (target 0);
  - the share of each HostUp key's limit that background refresh used: its
    list and detail requests in the busiest 60 s, and over the run
    (target: at most refresh_share + 5 %);
  - control-write latency beyond the API's own time: the write's wall
    time less the time the simulator spent answering that VPS's requests
    during it, median and 99th percentile (target: p99 at most 1 s);
  - the time until every resource was listed after the mount, against
    the floor the share allows: with 300 requests in any 60 s, the last of
    P pages can go no sooner than (ceil(P / 300) - 1) x 60 s (target:
    within 10 %);
  - how many details the second account read, against what the share
    leaves after its lists;
  - requests per connection (keep-alive: one connection pool per key).

No exit code says pass or fail. Cleans up on any exit: unmount, simulators
stopped, temporary directory removed. Environment: INFRAFS_BIN (default
build/infrafs), INFRAFS_SIM (default contrib/infrafs-sim). Standard library
only.
"""

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOKEN = "bench-token"
LIMIT, WINDOW, SHARE = 600, 60, 50   # the simulator's HostUp limit, infrafs's default share
PAGE = 100                           # VPSes per list page


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Sim:
    """One contrib/infrafs-sim process and its admin API."""

    def __init__(self, tmp, name, *args):
        d = os.path.join(tmp, name)
        os.mkdir(d)
        self.ports_file = os.path.join(d, "ports.json")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.environ.get("INFRAFS_SIM", os.path.join(TOP, "contrib",
                                                                           "infrafs-sim")),
             "--free-ports", "--token", TOKEN, "--ports-file", self.ports_file, "--quiet",
             *args], stdout=open(os.path.join(d, "sim.log"), "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not os.path.exists(self.ports_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the simulator {name} did not start")
            time.sleep(0.2)
        time.sleep(0.2)
        with open(self.ports_file) as f:
            self.ports = json.load(f)

    def url(self, provider="hostup"):
        return f"http://127.0.0.1:{self.ports[provider]}"

    def admin(self, method, path, provider="hostup"):
        req = urllib.request.Request(self.url(provider) + path, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None

    def requests(self, provider="hostup"):
        return self.admin("GET", f"/_sim/requests?provider={provider}", provider)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def provider_file(mnt, account, name):
    try:
        with open(os.path.join(mnt, "providers", account, name)) as f:
            return f.read()
    except OSError:
        return ""


def fields(text):
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def busiest(times, window):
    """The most of `times` that any `window` seconds hold."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


class Run:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.mnt = os.path.join(tmp, "mnt")
        self.stop = threading.Event()
        self.fresh_at = {}        # account -> seconds after the mount until all listed
        self.writes = []          # (account, vps id, start epoch, end epoch, error)
        self.walks = 0
        self.started = None

    def config(self, big, small):
        return (f"[big]\ntype = hostup\nurl = {big.url()}\ntoken = {TOKEN}\nrefresh = 60\n\n"
                f"[details]\ntype = hostup\nurl = {small.url()}\ntoken = {TOKEN}\n"
                f"refresh = 60\ndetail_limit = 10000\n\n"
                f"[atlas]\ntype = hostatlas\nurl = {small.url('hostatlas')}\n"
                f"token = {TOKEN}\nrefresh = 60\n\n"
                f"[heo]\ntype = heo\nurl = {small.url('heo')}\ntoken = {TOKEN}\n"
                f"refresh = 60\nvps = vps_101\n")

    def watch(self, counts):
        """Notes when each HostUp account's first refresh has listed it all."""
        while not self.stop.wait(1):
            for account, n in counts.items():
                if account in self.fresh_at:
                    continue
                p = fields(provider_file(self.mnt, account, "progress"))
                if p.get("state") == "idle" and p.get("last_resources") == str(n):
                    self.fresh_at[account] = time.monotonic() - self.started
                    log(f"{account}: all {n} listed after {self.fresh_at[account]:.1f} s")

    def walk(self):
        """Readers: ls, cat and grep over parts of the tree, every 5 s."""
        while not self.stop.wait(5):
            for cmd in (f"ls {self.mnt}/vps/details | wc -l",
                        f"cat {self.mnt}/vps/details/*/power_state | sort | uniq -c",
                        f"grep -r -l online {self.mnt}/servers/atlas | wc -l",
                        f"ls -f {self.mnt}/vps/big | head -1000 | wc -l",
                        f"cat {self.mnt}/providers/*/budget > /dev/null"):
                subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=120)
            self.walks += 1

    def running_vps(self, sim, account):
        """A running, active VPS the tree shows, with no job under way."""
        busy = {j["vpsId"] for j in sim.admin("GET", "/_sim/hostup/jobs")
                if j.get("status") not in ("completed", "failed")}
        names = os.listdir(os.path.join(self.mnt, "vps", account))
        for vps_id in random.sample(names, min(len(names), 50)):
            if vps_id in busy:
                continue
            vps = sim.admin("GET", f"/_sim/hostup/vps/{vps_id}")
            if vps.get("powerState") == "running" and vps.get("serviceStatus") == "active":
                return vps_id
        return None

    def write(self, sims):
        n = 0
        while not self.stop.wait(10):
            account = "big" if n % 2 and "big" in self.fresh_at else "details"
            n += 1
            vps_id = self.running_vps(sims[account], account)
            if not vps_id:
                continue
            path = os.path.join(self.mnt, "vps", account, vps_id, "power")
            start = time.time()
            error = None
            try:
                with open(path, "w") as f:
                    f.write("restart\n")
            except OSError as e:
                error = e.strerror
            self.writes.append((account, vps_id, start, time.time(), error))


def api_seconds(entries, vps_id, start, end):
    """What the simulator spent answering requests about `vps_id` that
    arrived during [start, end]."""
    return sum(e["seconds"] or 0 for e in entries
               if vps_id in e["path"] and start - 0.01 <= e["time"] <= end)


def report(run, sims, counts, minutes):
    logs = {name: sim.requests() for name, sim in (("big", sims["big"]),
                                                   ("details", sims["details"]))}
    atlas = sims["details"].requests("hostatlas")
    heo = sims["details"].requests("heo")
    every = [e for entries in (*logs.values(), atlas, heo) for e in entries]
    n429 = sum(1 for e in every if e["status"] == 429)
    print()
    print(f"request budget, {minutes:g} min, load average {loadavg()} at the end")
    print(f"  429 answers (all simulators): {n429}  (target 0)")
    cap = LIMIT * SHARE // 100
    for account, entries in logs.items():
        # What the writes caused is the users': the gate and the action,
        # the operation's polls, and the VPS read again once it ended.
        background = [e["time"] for e in entries
                      if e["method"] == "GET" and not e["path"].startswith("/api/jobs/")
                      and not any(e["path"].startswith(f"/api/v2/vps/{w[1]}") and
                                  w[2] - 0.01 <= e["time"] <= w[3] + 10
                                  for w in run.writes if w[0] == account)]
        peak = busiest(background, WINDOW)
        mean = len(background) / (minutes * 60 / WINDOW)
        b = fields(provider_file(run.mnt, account, "budget"))
        print(f"  {account}: background requests {len(background)}; busiest {WINDOW} s: "
              f"{peak} = {100 * peak / LIMIT:.1f} % of the limit; over the run "
              f"{100 * mean / LIMIT:.1f} %  (target <= {SHARE + 5} %)")
        print(f"      budget file: refresh_sent {b.get('refresh_sent')}, user_sent "
              f"{b.get('user_sent')}, answers_429 {b.get('answers_429')}, "
              f"effective_interval {b.get('effective_interval')} s")
        ports = {e["port"] for e in entries if e["port"]}
        print(f"      connections: {len(ports)} for {len(entries)} requests")
    for account, n in counts.items():
        # Under "cap requests in any WINDOW seconds", the last of `pages`
        # requests can go no sooner than this.
        pages = -(-n // PAGE)
        floor = (-(-pages // cap) - 1) * WINDOW
        took = run.fresh_at.get(account)
        shown = f"{took:.1f} s" if took is not None else "not within the run"
        ratio = f" = {took / floor:.2f} x the floor" if took is not None and floor else ""
        print(f"  {account}: all {n} listed after {shown}; floor at the share "
              f"{floor:.0f} s ({pages} pages, {cap} in any {WINDOW} s){ratio}  "
              f"(target <= 1.10 x)")
    details = [e for e in logs["details"] if e["path"].endswith("/details")
               and e["method"] == "GET"]
    print(f"  details: {len(details)} /details reads (and as many /status) in the run")
    errors = [w for w in run.writes if w[4]]
    print(f"  control writes: {len(run.writes)} ({len(errors)} failed: "
          f"{sorted({w[4] for w in errors})})")
    for account in ("all", *logs):
        writes = [w for w in run.writes if account in ("all", w[0])]
        if not writes:
            continue
        walls = [end - start for _, _, start, end, _ in writes]
        beyond = [end - start - api_seconds(logs[acct], vps_id, start, end)
                  for acct, vps_id, start, end, _ in writes]
        print(f"    {account} ({len(writes)}): wall median {statistics.median(walls):.3f} s, "
              f"p99 {percentile(walls, 99):.3f} s; beyond the API's own time: median "
              f"{statistics.median(beyond):.3f} s, p99 {percentile(beyond, 99):.3f} s"
              f"{'  (target p99 <= 1 s)' if account == 'all' else ''}")
    print(f"  tree walks while it ran: {run.walks}")
    print("  (HTTP/2: the simulator speaks HTTP/1.1 in the clear; see tests/bench/http2.py)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--big", type=int, default=100000)
    parser.add_argument("--details", type=int, default=5000)
    args = parser.parse_args(argv)
    infrafs = os.environ.get("INFRAFS_BIN", os.path.join(TOP, "build", "infrafs"))
    tmp = tempfile.mkdtemp(prefix="infrafs-budget-")
    sims, proc, run = {}, None, Run(args, tmp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        log(f"load average {loadavg()}; starting simulators ({args.big} + {args.details} VPSes)")
        sims["big"] = Sim(tmp, "big", "--vps-count", str(args.big))
        sims["details"] = Sim(tmp, "details", "--vps-count", str(args.details))
        config = os.path.join(tmp, "config")
        with open(config, "w") as f:
            f.write(run.config(sims["big"], sims["details"]))
        os.chmod(config, 0o600)
        os.mkdir(run.mnt)
        run.started = time.monotonic()
        proc = subprocess.Popen([infrafs, "-f", "-o", f"config={config}", "-o",
                                 f"cache_dir={tmp}/cache", "-o", "startup_timeout=1", run.mnt],
                                stderr=open(os.path.join(tmp, "infrafs.log"), "w"))
        while not os.path.ismount(run.mnt):
            if proc.poll() is not None:
                sys.exit("infrafs exited: see " + os.path.join(tmp, "infrafs.log"))
            time.sleep(0.1)
        log("mounted; running")
        counts = {"big": args.big, "details": args.details}
        threads = [threading.Thread(target=run.watch, args=(counts,), daemon=True),
                   threading.Thread(target=run.walk, daemon=True),
                   threading.Thread(target=run.write, args=(sims,), daemon=True)]
        for t in threads:
            t.start()
        run.stop.wait(args.minutes * 60)
        run.stop.set()
        for t in threads:
            t.join(timeout=130)
        report(run, sims, counts, args.minutes)
    finally:
        run.stop.set()
        if os.path.ismount(run.mnt):
            subprocess.run(["fusermount3", "-u", run.mnt])
        if proc:
            proc.wait(timeout=30)
        for sim in sims.values():
            sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
