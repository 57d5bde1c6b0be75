#!/usr/bin/python3
"""Soak test: infrafs under a steady rain of API faults, for minutes.

Starts contrib/infrafs-sim with a random fault rate (default 20 % of provider
requests fail: 5xx, 429, dropped, delayed or truncated), mounts infrafs over
two accounts with a short refresh interval, and for --minutes runs at once:

  readers   grep -r, find, ls -lR and cat over the tree, and a walker that
            opens and reads every data file (not operation/wait, which
            blocks by design, nor the control files being written to);
  writers   `echo restart|start|shutdown > power` on random VPSes and
            `echo 1 > providers/ACCOUNT/refresh`;
  samplers  the daemon's RSS (VmRSS in /proc/PID/status) every 5 s and each
            account's state every second.

It prints the figures (requests, injected faults, errors by kind, latencies,
RSS over time) and FAILS (exit 1, with the reasons) on:

  crash     the daemon exits or the mount disappears;
  hang      a reader that does not return within --read-hang seconds (10),
            a write that does not return within --write-hang seconds (90);
  read error  any error reading data that is there: a file that exists in
            the tree must always read (ENOENT/ENOTDIR/EISDIR while walking
            are counted, not failed: the tree may change between listing a
            directory and opening an entry), and name/id/json of every VPS,
            which never change shape, must always read;
  bad errno a control write failing with an errno outside doc/SEMANTICS.md §5.5's table for API faults (EIO, EAGAIN, EBUSY, ETIMEDOUT, EHOSTUNREACH);
  memory growth  after warm-up (the first fifth of the run, at least 30 s),
            mean RSS of the last third of the samples more than --max-growth
            percent (20) above the mean of the first third;
  sanitizer or critical lines in the daemon's stderr, or an unclean exit
            after `fusermount3 -u`.

Not part of `meson test` (it takes minutes). Run as root (FUSE), from a
build directory or not:

    /usr/bin/python3 tests/soak/soak.py                  # 10 minutes
    /usr/bin/python3 tests/soak/soak.py --minutes 2 --fault-rate 0.3

Under AddressSanitizer (--infrafs build-asan/infrafs) RSS also holds ASan's
quarantine of freed memory (256 MiB by default), which fills up over the
first minutes: give it ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=8 so
that the memory check still means something; leaks are reported at exit.
"""

import argparse
import collections
import errno
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKEN = "soak-token"
ALLOWED_WRITE_ERRNOS = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT,
                        errno.EHOSTUNREACH}
VANISHED = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR}
VANISHED_TEXT = ("No such file or directory", "Not a directory", "Is a directory")
SUSPICIOUS = re.compile(r"==\d+==|runtime error|critical|AddressSanitizer|LeakSanitizer",
                        re.I)
# Files the readers leave alone: operation/wait blocks until its operation
# ends, by design; a control file being written to cannot be read until the
# write returns (a known limitation, see test_faults.py's xfail). Neither is
# data.
NOT_DATA = ("wait", "power", "refresh")
SKIP_GREP = " ".join(f"--exclude={n}" for n in NOT_DATA)
# One write() in a child process: a hung write cannot hang the soak itself.
WRITE = ("import os, sys\n"
         "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)\n"
         "try:\n"
         "    os.write(fd, sys.argv[2].encode())\n"
         "except OSError as e:\n"
         "    sys.exit(e.errno)\n")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10, help="duration (default 10)")
    p.add_argument("--fault-rate", type=float, default=0.2,
                   help="share of provider requests that fail (default 0.2)")
    p.add_argument("--fault-delay-ms", type=int, default=1500,
                   help="how long a delay fault waits (default 1500)")
    p.add_argument("--refresh", type=int, default=2,
                   help="refresh interval of both accounts, seconds (default 2)")
    p.add_argument("--timeout", type=int, default=5,
                   help="the accounts' HTTP timeout, seconds (default 5)")
    p.add_argument("--vps", type=int, default=10, help="VPSes in the simulator (default 10)")
    p.add_argument("--readers", type=int, default=4,
                   help="concurrent shell readers (default 4)")
    p.add_argument("--read-hang", type=float, default=10,
                   help="a read taking longer is a hang (default 10 s)")
    p.add_argument("--write-hang", type=float, default=90,
                   help="a control write taking longer is a hang (default 90 s)")
    p.add_argument("--max-growth", type=float, default=20,
                   help="allowed RSS growth after warm-up, percent (default 20)")
    p.add_argument("--seed", type=int, default=None, help="seed for faults and choices")
    p.add_argument("--infrafs", default=os.environ.get("INFRAFS_BIN",
                                                       os.path.join(ROOT, "build", "infrafs")))
    p.add_argument("--sim", default=os.environ.get("INFRAFS_SIM",
                                                   os.path.join(ROOT, "contrib", "infrafs-sim")))
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    if args.minutes <= 0 or not 0 <= args.fault_rate <= 1:
        p.error("--minutes must be > 0 and --fault-rate from 0 to 1")
    return args


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="infrafs-soak-")
        self.mnt = os.path.join(self.work, "mnt")
        os.mkdir(self.mnt)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures = []
        self.counts = collections.Counter()
        self.latency = collections.defaultdict(float)   # what -> max seconds
        self.write_errnos = collections.defaultdict(collections.Counter)
        self.vanished = collections.Counter()
        self.rss = []        # (seconds since start, kB)
        self.states = collections.defaultdict(collections.Counter)
        self.sim = self.daemon = None
        self.accounts = ("a", "b")

    # -- bookkeeping ------------------------------------------------------
    def fail(self, what):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(f"{self.elapsed():7.1f}s {what}")
        print(f"soak: FAILURE: {what}", file=sys.stderr, flush=True)

    def note(self, what, seconds=None):
        with self.lock:
            self.counts[what] += 1
            if seconds is not None:
                self.latency[what] = max(self.latency[what], seconds)

    def elapsed(self):
        return time.monotonic() - self.started

    # -- setup ------------------------------------------------------------
    def sim_admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_sim{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read().decode() or "null")

    def start(self):
        a = self.args
        ports_file = os.path.join(self.work, "ports.json")
        self.sim_log = open(os.path.join(self.work, "sim.log"), "w")
        self.sim = subprocess.Popen(
            ["/usr/bin/python3", a.sim, "--free-ports", "--ports-file", ports_file,
             "--quiet", "--token", TOKEN, "--vps-count", str(a.vps), "--job-seconds", "2",
             "--fault-rate", str(a.fault_rate), "--fault-delay-ms", str(a.fault_delay_ms)],
            stdout=self.sim_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not os.path.exists(ports_file):
            if self.sim.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("soak: the simulator did not start; see " + self.sim_log.name)
            time.sleep(0.05)
        with open(ports_file) as f:
            self.port = json.load(f)["hostup"]
        # Faults, not the simulated rate limit, are what this run is about.
        self.sim_admin("POST", "/config",
                       {"hostup": {"rate_limit": {"limit": 1000000, "window_s": 60}}})
        if a.seed is not None:
            self.sim_admin("POST", "/chaos", {"rate": a.fault_rate, "seed": a.seed,
                                             "delay_ms": a.fault_delay_ms})
        config = os.path.join(self.work, "config")
        with open(config, "w") as f:
            for name in self.accounts:
                f.write(f"[{name}]\ntype = hostup\nurl = http://127.0.0.1:{self.port}\n"
                        f"token = {TOKEN}\nrefresh = {a.refresh}\ntimeout = {a.timeout}\n\n")
        os.chmod(config, 0o600)
        self.stderr_path = os.path.join(self.work, "infrafs.stderr")
        with open(self.stderr_path, "w") as err:
            self.daemon = subprocess.Popen(
                [a.infrafs, "-f", "-o", f"config={config},cache_dir={self.work}/cache",
                 self.mnt], stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 60
        while "mounted at" not in self.daemon_stderr():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("soak: infrafs did not mount:\n" + self.daemon_stderr())
            time.sleep(0.1)
        # Under faults the first refresh may fail: wait until both accounts
        # have data (retries come after 5 s, 10 s, ...).
        deadline = time.monotonic() + 120
        while not all(self.state(n) == "ok" for n in self.accounts):
            if time.monotonic() > deadline:
                raise SystemExit("soak: the accounts never refreshed successfully")
            time.sleep(0.5)
        self.ids = {n: sorted(os.listdir(os.path.join(self.mnt, "vps", n)))
                    for n in self.accounts}
        if any(len(v) != a.vps for v in self.ids.values()):
            raise SystemExit(f"soak: expected {a.vps} VPSes per account, got {self.ids}")

    def daemon_stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def state(self, account):
        try:
            with open(os.path.join(self.mnt, "providers", account, "state")) as f:
                return f.read().strip()
        except OSError as e:
            return f"unreadable ({e.strerror})"

    # -- workers ----------------------------------------------------------
    def run_reader(self, what, cmd, stable):
        """A shell reader; `stable`: every path it reads must read."""
        start = time.monotonic()
        proc = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace",
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=self.args.read_hang)
        except subprocess.TimeoutExpired:
            self.fail(f"hang: `{what}` did not return within {self.args.read_hang:g}s")
            self.dump_stacks(proc.pid, what)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return
        out = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
        took = time.monotonic() - start
        self.note(what, took)
        for line in out.stderr.splitlines():
            if not stable and any(t in line for t in VANISHED_TEXT):
                self.vanished[what] += 1
            else:
                self.fail(f"read error from `{what}`: {line}")
        if out.returncode not in (0, 1) and not out.stderr:
            self.fail(f"`{what}` exited {out.returncode} without saying why")

    def dump_stacks(self, pid, what):
        """Where a hung reader (and its children) and the daemon's threads
        sit in the kernel, into the work directory, for the post-mortem."""
        path = os.path.join(self.work, f"hang-{self.elapsed():.0f}s-{what.split()[0]}.txt")
        with open(path, "w") as out:
            pids = [pid] + [int(p) for p in subprocess.run(
                ["pgrep", "-s", str(pid)], capture_output=True, text=True).stdout.split()]
            for p in dict.fromkeys(pids):
                out.write(f"== reader {p}: {self.proc_text(f'/proc/{p}/cmdline')}\n")
                out.write(self.proc_text(f"/proc/{p}/stack") + "\n")
            for tid in sorted(os.listdir(f"/proc/{self.daemon.pid}/task")):
                base = f"/proc/{self.daemon.pid}/task/{tid}"
                out.write(f"== infrafs thread {tid} {self.proc_text(base + '/comm')}: "
                          f"{self.proc_text(base + '/wchan')}\n")
                out.write(self.proc_text(base + "/stack") + "\n")
        print(f"soak: stacks written to {path}", file=sys.stderr, flush=True)

    @staticmethod
    def proc_text(path):
        try:
            with open(path, "rb") as f:
                return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError as e:
            return f"({e.strerror})"

    def shell_readers(self):
        m = self.mnt
        readers = [
            ("grep -r", f"grep -r -c {SKIP_GREP} . {m}/vps {m}/providers > /dev/null",
             False),
            ("find", f"find {m} -type f > /dev/null", False),
            ("ls -lR", f"ls -lR {m} > /dev/null", False),
            ("cat name/id/json", f"cat {m}/vps/*/*/name {m}/vps/*/*/id {m}/vps/*/*/json "
                                 f"> /dev/null", True),
        ]
        while not self.stop.is_set():
            what, cmd, stable = self.rng.choice(readers)
            self.run_reader(what, cmd, stable)

    def walker(self):
        """Opens and reads every file, in-process, timing each read."""
        while not self.stop.is_set():
            for dirpath, _, filenames in os.walk(os.path.join(self.mnt, "vps")):
                for name in filenames:
                    if self.stop.is_set():
                        return
                    if name in NOT_DATA:
                        continue
                    path = os.path.join(dirpath, name)
                    start = time.monotonic()
                    try:
                        with open(path, "rb") as f:
                            f.read()
                    except OSError as e:
                        if e.errno in VANISHED:
                            self.vanished["walker"] += 1
                        else:
                            self.fail(f"read error: {path}: {e.strerror}")
                        continue
                    took = time.monotonic() - start
                    self.note("walker read", took)
                    if took > self.args.read_hang:
                        self.fail(f"hang: reading {path} took {took:.1f}s")

    def write(self, what, path, text):
        start = time.monotonic()
        try:
            rc = subprocess.run([sys.executable, "-c", WRITE, path, text],
                                timeout=self.args.write_hang).returncode
        except subprocess.TimeoutExpired:
            self.fail(f"hang: `echo {text.strip()} > {path}` did not return within "
                      f"{self.args.write_hang:g}s")
            return
        self.note(what, time.monotonic() - start)
        with self.lock:
            self.write_errnos[what][rc] += 1
        if rc and rc not in ALLOWED_WRITE_ERRNOS:
            self.fail(f"`echo {text.strip()} > {path}` failed with "
                      f"{errno.errorcode.get(rc, rc)} ({os.strerror(rc)})")

    def power_writer(self):
        while not self.stop.wait(self.rng.uniform(0.5, 3)):
            account = self.rng.choice(self.accounts)
            vps = self.rng.choice(self.ids[account])
            command = self.rng.choice(("restart", "start", "shutdown"))
            self.write("power write", os.path.join(self.mnt, "vps", account, vps, "power"),
                       command + "\n")

    def refresh_writer(self):
        while not self.stop.wait(self.rng.uniform(2, 6)):
            account = self.rng.choice(self.accounts)
            self.write("refresh write", os.path.join(self.mnt, "providers", account,
                                                     "refresh"), "1\n")

    def sampler(self):
        next_rss = 0.0
        while not self.stop.wait(1):
            if self.daemon.poll() is not None:
                self.fail(f"crash: infrafs exited with {self.daemon.returncode}")
                self.stop.set()
                return
            with open("/proc/mounts") as f:
                if not any(line.split()[1] == self.mnt for line in f):
                    self.fail("crash: the mount disappeared")
                    self.stop.set()
                    return
            for n in self.accounts:
                self.states[n][self.state(n)] += 1
            if self.elapsed() >= next_rss:
                next_rss += 5
                try:
                    with open(f"/proc/{self.daemon.pid}/status") as f:
                        kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
                    self.rss.append((self.elapsed(), kb))
                except (OSError, AttributeError):
                    pass

    # -- run ----------------------------------------------------------------
    def run(self):
        duration = self.args.minutes * 60
        self.started = time.monotonic()
        self.start()
        print(f"soak: infrafs mounted at {self.mnt}; simulator on port {self.port} with "
              f"{self.args.fault_rate:.0%} faults; running {self.args.minutes:g} min",
              flush=True)
        self.started = time.monotonic()
        threads = [threading.Thread(target=self.shell_readers, daemon=True)
                   for _ in range(self.args.readers)]
        threads += [threading.Thread(target=f, daemon=True) for f in
                    (self.walker, self.power_writer, self.refresh_writer)]
        sampler = threading.Thread(target=self.sampler, daemon=True)
        sampler.start()
        for t in threads:
            t.start()
        next_report = 60
        while not self.stop.wait(1):
            if self.elapsed() >= duration:
                break
            if self.elapsed() >= next_report:
                next_report += 60
                rss = self.rss[-1][1] if self.rss else 0
                print(f"soak: {self.elapsed() / 60:4.1f} min  RSS {rss / 1024:6.1f} MiB  "
                      f"reads {sum(v for k, v in self.counts.items() if 'write' not in k)}  "
                      f"writes {self.counts['power write'] + self.counts['refresh write']}  "
                      f"failures {len(self.failures)}", flush=True)
        self.stop.set()
        for t in threads:
            t.join(timeout=self.args.write_hang + 10)
            if t.is_alive():
                self.fail(f"hang: worker {t.name} did not finish")
        sampler.join(timeout=10)
        self.finish()

    def finish(self):
        chaos = self.sim_admin("GET", "/chaos")
        log = self.sim_admin("GET", "/requests")
        self.requests_counted = {n: self.read_provider(n, "requests") for n in self.accounts}
        self.sim_requests = len(log)
        self.sim_statuses = collections.Counter(
            "dropped" if e["status"] is None else str(e["status"]) for e in log)
        self.chaos = chaos
        if self.daemon.poll() is None:
            subprocess.run(["fusermount3", "-u", self.mnt])
            try:
                rc = self.daemon.wait(timeout=30)
                if rc != 0:
                    self.fail(f"infrafs exited with {rc} after fusermount3 -u")
            except subprocess.TimeoutExpired:
                self.fail("hang: infrafs did not exit within 30 s of fusermount3 -u")
        text = self.daemon_stderr()
        for line in text.splitlines():
            if SUSPICIOUS.search(line):
                self.fail(f"daemon stderr: {line}")
        self.refresh_failures = len(re.findall(r"refresh failed", text))

    def read_provider(self, account, name):
        try:
            with open(os.path.join(self.mnt, "providers", account, name)) as f:
                return f.read().strip()
        except OSError:
            return "?"

    def memory_verdict(self):
        warmup = max(30.0, self.args.minutes * 60 / 5)
        samples = [kb for t, kb in self.rss if t >= warmup]
        if len(samples) < 6:
            return None, "too few samples after warm-up to judge memory growth"
        third = len(samples) // 3
        first, last = statistics.mean(samples[:third]), statistics.mean(samples[-third:])
        growth = (last - first) / first * 100
        text = (f"RSS after warm-up ({warmup:.0f}s): first third {first / 1024:.1f} MiB, "
                f"last third {last / 1024:.1f} MiB, growth {growth:+.1f}% "
                f"(limit {self.args.max_growth:g}%)")
        if growth > self.args.max_growth:
            self.fail(f"memory growth: {text}")
        return growth, text

    def report(self):
        _, memory = self.memory_verdict()
        print("\n== infrafs soak test report ==")
        print(f"duration            {self.elapsed() / 60:.1f} min, fault rate "
              f"{self.args.fault_rate:.0%}, refresh {self.args.refresh}s, timeout "
              f"{self.args.timeout}s, {self.args.vps} VPSes x {len(self.accounts)} accounts")
        print(f"API requests        {self.sim_requests} seen by the simulator; infrafs "
              f"counted " + ", ".join(f"{n}: {v}" for n, v in self.requests_counted.items()))
        injected = {k: v for k, v in self.chaos["injected"].items() if v}
        print(f"faults injected     {sum(injected.values())} "
              f"({sum(injected.values()) / max(1, self.chaos['requests']):.1%}): "
              + ", ".join(f"{k} {v}" for k, v in sorted(injected.items())))
        print("answers             " + ", ".join(
            f"{k}: {v}" for k, v in sorted(self.sim_statuses.items())))
        print(f"refresh failures    {self.refresh_failures} logged by infrafs")
        for n in self.accounts:
            total = sum(self.states[n].values()) or 1
            print(f"state of {n:10s} " + ", ".join(
                f"{k} {v / total:.0%}" for k, v in self.states[n].most_common()))
        print("reads               " + ", ".join(
            f"{k}: {v} (max {self.latency[k]:.2f}s)" for k, v in sorted(self.counts.items())
            if "write" not in k))
        print("vanished entries    " + (", ".join(
            f"{k}: {v}" for k, v in sorted(self.vanished.items())) or "none") +
            " (tree changed between listing and reading; not errors)")
        for what in ("power write", "refresh write"):
            errs = self.write_errnos[what]
            print(f"{what:19s} {sum(errs.values())} (max {self.latency[what]:.1f}s): " +
                  ", ".join(f"{'ok' if e == 0 else errno.errorcode.get(e, e)} {c}"
                            for e, c in errs.most_common()))
        print("RSS over time       " + "  ".join(
            f"{t / 60:.1f}m:{kb / 1024:.1f}MiB" for t, kb in
            self.rss[::max(1, len(self.rss) // 12)]))
        print(f"memory              {memory}")
        if self.failures:
            print(f"\nFAIL: {len(self.failures)} problem(s):")
            for f in self.failures:
                print("  " + f)
        else:
            print("\nPASS: no crash, no hang, no read error, no unexpected errno, "
                  "no memory growth")
        if self.failures or self.args.keep:
            print(f"(work directory, kept: {self.work})")

    def cleanup(self):
        self.stop.set()
        if self.daemon and self.daemon.poll() is None:
            if subprocess.run(["fusermount3", "-u", self.mnt],
                              capture_output=True).returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        if self.sim and self.sim.poll() is None:
            self.sim.send_signal(signal.SIGTERM)
            try:
                self.sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sim.kill()
        if not self.args.keep and not self.failures:
            subprocess.run(["rm", "-rf", self.work])


def main():
    args = parse_args()
    soak = Soak(args)
    try:
        soak.run()
        soak.report()
    except KeyboardInterrupt:
        soak.fail("interrupted")
    finally:
        soak.cleanup()
    return 1 if soak.failures else 0


if __name__ == "__main__":
    sys.exit(main())
