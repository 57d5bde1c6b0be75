#!/usr/bin/python3
"""Run every fuzz target for longer than CI does, and print what each did:

    tests/fuzz/long_run.py BUILD-FUZZ-DIR [MINUTES-EACH] [TARGET ...]

The targets are the fuzz suite's tests of BUILD-FUZZ-DIR (meson
introspect), two at a time. Each starts from its seed corpus
(tests/fuzz/corpus/TARGET), adding what it finds to a scratch directory
(the corpus is left as it is); a crashing
input is kept in BUILD-FUZZ-DIR/tests/fuzz/long-run/TARGET/. Prints, per
target: executions, executions a second, coverage (libFuzzer's edge
counter `cov` and feature counter `ft`), corpus size at the start and the
end, peak memory and findings."""

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def fuzz_tests(build):
    """name -> (executable, seed corpus, dictionary or None), as meson runs
    them (tests/fuzz/meson.build says which is which)."""
    out = subprocess.run(["meson", "introspect", "--tests", build], check=True,
                         stdout=subprocess.PIPE).stdout
    tests = {}
    for t in json.loads(out):
        if any(suite.split(":")[-1] == "fuzz" for suite in t["suite"]):
            exe, corpus, _seconds, _findings, *rest = t["cmd"][1:]
            tests[t["name"]] = (os.path.join(build, exe), corpus, rest[0] if rest else None)
    return tests


def run(build, target, test, seconds):
    exe, seeds, dict_file = test
    findings = os.path.join(build, "tests", "fuzz", "long-run", target)
    shutil.rmtree(findings, ignore_errors=True)
    os.makedirs(findings)
    with tempfile.TemporaryDirectory() as scratch:
        args = [exe, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
                "-max_len=65536", "-print_final_stats=1", "-error_exitcode=1",
                f"-artifact_prefix={findings}/", scratch, seeds]
        if dict_file and os.path.exists(dict_file):
            args.insert(1, f"-dict={dict_file}")
        env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
               "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
        out = subprocess.run(args, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, timeout=seconds + 600)
        log = out.stderr.decode(errors="replace")
        with open(os.path.join(findings, "log"), "w") as f:
            f.write(log)
        final = os.listdir(scratch)
    stat = dict(re.findall(r"^stat::(\w+):\s*(\d+)", log, re.M))
    lines = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", log, re.M)
    inited = re.search(r"^#\d+\s+INITED\s+cov: (\d+) ft: (\d+) corp: (\d+)", log, re.M)
    last = lines[-1] if lines else ("0", "0", "0", "0")
    crashes = [f for f in os.listdir(findings) if f != "log"]
    return {
        "target": target,
        "runs": int(stat.get("number_of_executed_units", 0)),
        "per_s": int(stat.get("average_exec_per_sec", 0)),
        "cov0": int(inited.group(1)) if inited else 0,
        "cov": int(last[1]),
        "ft": int(last[2]),
        "seeds": len(os.listdir(seeds)),
        "corpus": len(final) + len(os.listdir(seeds)),
        "rss": int(stat.get("peak_rss_mb", 0)),
        "findings": crashes,
        "rc": out.returncode,
    }


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    tests = fuzz_tests(build)
    targets = sys.argv[3:] or sorted(tests)
    seconds = int(minutes * 60)
    print(f"{len(targets)} targets, {seconds} s each, 2 at a time; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda t: run(build, t, tests[t], seconds), targets))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"{'target':10} {'executions':>12} {'/s':>7} {'cov start':>9} {'cov':>6} {'ft':>7} "
          f"{'seeds':>5} {'corpus':>6} {'MB':>5}  findings")
    total = 0
    for r in results:
        total += r["runs"]
        found = ", ".join(r["findings"]) if r["findings"] else ("none" if r["rc"] == 0
                                                                 else f"exit {r['rc']}")
        print(f"{r['target']:10} {r['runs']:>12,} {r['per_s']:>7,} {r['cov0']:>9} {r['cov']:>6} "
              f"{r['ft']:>7} {r['seeds']:>5} {r['corpus']:>6} {r['rss']:>5}  {found}")
    print(f"total executions {total:,}")
    sys.exit(1 if any(r["findings"] or r["rc"] for r in results) else 0)


if __name__ == "__main__":
    main()
