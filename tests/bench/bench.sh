#!/usr/bin/env bash
# infrafs benchmark: shell tools over an infrafs mount versus the same tree
# copied to tmpfs. Prints figures only; there are no pass/fail thresholds.
#
#   tests/bench/bench.sh [-n N] [-r RUNS] [-k]
#
#   -n N      VPSes the simulator serves (default 10000)
#   -r RUNS   timed runs per command; the median is printed (default 5)
#   -k        skip the two extra mounts (no cold ls / ls -l figures)
#
#   tests/bench/bench.sh --engine [OPTIONS]   runs tests/bench/engine.py
#             (issue 11: the four listing providers at 10k and 100k, every
#             figure with its target; see its --help)
#
# Environment: INFRAFS_BIN (default build/infrafs), INFRAFS_SIM (default
# contrib/infrafs-sim), BENCH_TMPFS (default /dev/shm) for the tmpfs copy.
#
# Steps: start contrib/infrafs-sim with N VPSes; mount infrafs (timed: the
# mount command returns after the first refresh); cold `grep -r` and its
# second run; copy the tree to tmpfs with cp -r; for both trees warm each
# command once, then time RUNS runs of each (median); the daemon's RSS; then
# fresh mounts for a cold `ls` and a cold `ls -l` of the vps directory.
# Everything is cleaned up on exit (unmount, simulator killed, copy removed).
set -eu
set -o pipefail

usage() { sed -n '2,16s/^# \{0,1\}//p' "$0"; }

if [ "${1:-}" = --engine ]; then
    shift
    exec /usr/bin/python3 "$(dirname "$0")/engine.py" "$@"
fi

N=10000
RUNS=5
COLD_REMOUNTS=1
while getopts "n:r:kh" opt; do
    case $opt in
    n) N=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    k) COLD_REMOUNTS=0 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $N in '' | *[!0-9]*) echo "bench.sh: -n takes a whole number" >&2; exit 2 ;; esac
case $RUNS in '' | *[!0-9]* | 0) echo "bench.sh: -r takes a whole number >= 1" >&2; exit 2 ;; esac

top=$(cd "$(dirname "$0")/../.." && pwd)

# Relative paths: from the current directory if the file is there, else from
# the top of the repository.
resolve() {
    case $1 in
    /*) printf '%s\n' "$1" ;;
    *) if [ -e "$1" ]; then printf '%s/%s\n' "$(pwd)" "$1"; else printf '%s/%s\n' "$top" "$1"; fi ;;
    esac
}
BIN=$(resolve "${INFRAFS_BIN:-build/infrafs}")
SIM=$(resolve "${INFRAFS_SIM:-contrib/infrafs-sim}")
TMPFS_ROOT=${BENCH_TMPFS:-/dev/shm}

if [ ! -x "$BIN" ]; then
    echo "bench.sh: $BIN is missing or not executable." >&2
    echo "Build it first: cd $top && meson setup build && ninja -C build" >&2
    echo "(or point INFRAFS_BIN at another build, e.g. INFRAFS_BIN=build-bench/infrafs)" >&2
    exit 1
fi
[ -f "$SIM" ] || { echo "bench.sh: simulator $SIM not found" >&2; exit 1; }
for tool in fusermount3 grep find ls du cp xargs; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool is required" >&2; exit 1; }
done

[ "$(stat -f -c %T "$TMPFS_ROOT" 2>/dev/null)" = tmpfs ] ||
    echo "bench.sh: warning: $TMPFS_ROOT is not a tmpfs; set BENCH_TMPFS" >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/infrafs-bench.XXXXXX")
copy=$(mktemp -d "$TMPFS_ROOT/infrafs-bench.XXXXXX")
mnt=$work/mnt
cfg=$work/config
sim_pid=

cleanup() {
    set +e
    if mountpoint -q "$mnt" 2>/dev/null; then
        fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
    fi
    if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
        kill "$sim_pid"
        wait "$sim_pid" 2>/dev/null
    fi
    chmod -R u+w "$copy" 2>/dev/null
    rm -rf "$copy" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- timing helpers ----------------------------------------------------------

if [ -n "${EPOCHREALTIME:-}" ]; then
    now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; } # no fork
else
    now() { date +%s.%N; }
fi
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", b - a }'; }

# time_cmd CMD...: run CMD (output discarded), print its wall time in
# seconds. A failing command is reported, not fatal: grep exits 1 on no match.
time_cmd() {
    local t0 t1 rc=0
    t0=$(now)
    "$@" >/dev/null 2>>"$work/errors" || rc=$?
    t1=$(now)
    if [ "$rc" -gt 1 ]; then
        echo "bench.sh: warning: '$*' exited with $rc (see below)" >&2
        tail -n 3 "$work/errors" >&2
    fi
    elapsed "$t0" "$t1"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.6f\n", v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt3() { awk -v v="$1" 'BEGIN { printf "%.3f", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

# ---- the commands measured ---------------------------------------------------
# Each takes the tree's root directory.
b_grep() { grep -r . "$1"; }
b_find() { find "$1"; }
b_lslr() { ls -lR "$1"; }
b_du() { du -s "$1"; }
# Every power_state: the glob is expanded by the shell (builtin printf, so no
# ARG_MAX limit) and the files are read by cat through xargs.
b_cat() { printf '%s\0' "$1"/vps/hostup/*/power_state | xargs -0 cat; }
b_ls() { ls "$1/vps/hostup"; }
b_lsl() { ls -l "$1/vps/hostup"; }

# ---- simulator, config, mount -------------------------------------------------

ports=$work/ports.json
/usr/bin/python3 "$SIM" --free-ports --ports-file "$ports" --vps-count "$N" --quiet \
    >"$work/sim.log" 2>&1 &
sim_pid=$!
i=0
until [ -s "$ports" ]; do
    kill -0 "$sim_pid" 2>/dev/null || { echo "bench.sh: simulator exited; its log:" >&2; cat "$work/sim.log" >&2; exit 1; }
    i=$((i + 1))
    [ $i -lt 1200 ] || { echo "bench.sh: simulator did not start in 120 s" >&2; exit 1; }
    sleep 0.1
done
port=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["hostup"])' "$ports")
# No rate limit: the simulator's default of 600 requests a minute would stall
# every mount past 60,000 VPSes (one list request per 100).
/usr/bin/python3 - "$port" <<'PY' || { echo "bench.sh: cannot configure the simulator" >&2; exit 1; }
import json, sys, urllib.request
body = json.dumps({"hostup": {"rate_limit": {"limit": 10**9, "window_s": 1}}}).encode()
urllib.request.urlopen(urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/_sim/config", body, method="POST"), timeout=30).read()
PY

(
    umask 077
    cat >"$cfg" <<CONF
# infrafs benchmark: one HostUp account on the local simulator, list only.
[hostup]
type = hostup
url = http://127.0.0.1:$port
token = demo-token
refresh = 3600
detail_limit = 0
CONF
)
chmod 600 "$cfg"
mkdir -p "$mnt"

daemon_pid=
mount_time=
# The daemon forked by the mount command: a process named like the binary
# whose command line names our (unique) config file.
find_daemon() {
    local pid comm want
    want=$(basename "$BIN" | cut -c1-15)
    for pid in $(pgrep -f -- "config=$cfg" || true); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
        if [ "$comm" = "$want" ]; then
            echo "$pid"
            return
        fi
    done
}
# do_mount: mount without -f; sets mount_time (the mount command's wall
# time) and daemon_pid.
do_mount() {
    local t0 t1 out
    t0=$(now)
    if ! out=$("$BIN" -o config="$cfg" -o startup_timeout=600 "$mnt" 2>&1); then
        echo "bench.sh: mount failed: $out" >&2
        exit 1
    fi
    t1=$(now)
    case $out in *"still running"*) echo "bench.sh: warning: $out" >&2 ;; esac
    mountpoint -q "$mnt" || { echo "bench.sh: $mnt is not mounted after: $out" >&2; exit 1; }
    daemon_pid=$(find_daemon)
    mount_time=$(elapsed "$t0" "$t1")
}
do_umount() {
    local i=0
    fusermount3 -u "$mnt"
    # The daemon exits on its own after the unmount; wait so that mounts
    # never overlap in memory or CPU.
    while [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}
rss_kb() {
    [ -n "$daemon_pid" ] && awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$daemon_pid/status" 2>/dev/null || echo 0
}
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "infrafs benchmark: N=$N VPSes, $RUNS timed runs per command (median), $(nproc) CPUs, Linux $(uname -r)"
echo "binary: $BIN"
echo "load average at start: $(loadavg) (other work on the machine skews every figure)"

do_mount
mount_first=$mount_time
rss_mount=$(rss_kb VmRSS)

# Cold: the very first walk after the mount, then the second one (which
# still asks the daemon for the attributes of every file read by the first).
cold_grep=$(time_cmd b_grep "$mnt")
second_grep=$(time_cmd b_grep "$mnt")

# The same content on tmpfs.
t0=$(now)
cp -r "$mnt" "$copy/tree"
t1=$(now)
copy_time=$(elapsed "$t0" "$t1")
tree=$copy/tree
nfiles=$(find "$tree" -type f | wc -l)
ndirs=$(find "$tree" -type d | wc -l)
nbytes=$(du -s --apparent-size -B1 "$tree" | cut -f1)

names=(grep find lslr du cat ls lsl)
declare -A label=(
    [grep]="grep -r . DIR" [find]="find DIR" [lslr]="ls -lR DIR" [du]="du -s DIR"
    [cat]="cat DIR/vps/hostup/*/power_state" [ls]="ls DIR/vps/hostup" [lsl]="ls -l DIR/vps/hostup")
declare -A fuse_med tmpfs_med
for name in "${names[@]}"; do
    time_cmd "b_$name" "$mnt" >/dev/null # warm the caches
    time_cmd "b_$name" "$tree" >/dev/null
    f=
    t=
    for ((r = 0; r < RUNS; r++)); do # interleaved, so drifts hit both
        f="$f $(time_cmd "b_$name" "$mnt")"
        t="$t $(time_cmd "b_$name" "$tree")"
    done
    fuse_med[$name]=$(printf '%s' "$f" | median)
    tmpfs_med[$name]=$(printf '%s' "$t" | median)
done
rss_runs=$(rss_kb VmRSS)
hwm_runs=$(rss_kb VmHWM)
rss_pid=$daemon_pid
do_umount

# Cold ls / ls -l of the vps directory: each on a fresh mount.
cold_ls=- cold_lsl=- mount_again=-
if [ "$COLD_REMOUNTS" = 1 ]; then
    do_mount
    mount_again=$mount_time
    cold_ls=$(time_cmd b_ls "$mnt")
    do_umount
    do_mount
    cold_lsl=$(time_cmd b_lsl "$mnt")
    do_umount
fi

# ---- report ------------------------------------------------------------------

echo "tree: $nfiles files, $ndirs directories, $nbytes bytes of file data"
echo "first mount (includes the first refresh of $N VPSes): $(fmt3 "$mount_first") s"
[ "$mount_again" = - ] || echo "second mount (same simulator):                    $(fmt3 "$mount_again") s"
echo "cp -r of the mount to tmpfs:                      $(fmt3 "$copy_time") s"
echo
echo "warm (caches filled by one untimed run), median of $RUNS runs, seconds:"
printf '%-36s %9s %9s %8s\n' "command" "infrafs" "tmpfs" "ratio"
for name in "${names[@]}"; do
    printf '%-36s %9s %9s %8s\n' "${label[$name]}" "$(fmt3 "${fuse_med[$name]}")" \
        "$(fmt3 "${tmpfs_med[$name]}")" "$(ratio "${fuse_med[$name]}" "${tmpfs_med[$name]}")"
done
echo
echo "cold (first run after a fresh mount), seconds; ratio to tmpfs warm:"
printf '%-36s %9s %9s %8s\n' "command" "infrafs" "tmpfs" "ratio"
printf '%-36s %9s %9s %8s\n' "grep -r . DIR" "$(fmt3 "$cold_grep")" "$(fmt3 "${tmpfs_med[grep]}")" \
    "$(ratio "$cold_grep" "${tmpfs_med[grep]}")"
printf '%-36s %9s %9s %8s\n' "grep -r . DIR, second run" "$(fmt3 "$second_grep")" "$(fmt3 "${tmpfs_med[grep]}")" \
    "$(ratio "$second_grep" "${tmpfs_med[grep]}")"
if [ "$cold_ls" != - ]; then
    printf '%-36s %9s %9s %8s\n' "ls DIR/vps/hostup" "$(fmt3 "$cold_ls")" "$(fmt3 "${tmpfs_med[ls]}")" \
        "$(ratio "$cold_ls" "${tmpfs_med[ls]}")"
    printf '%-36s %9s %9s %8s\n' "ls -l DIR/vps/hostup" "$(fmt3 "$cold_lsl")" "$(fmt3 "${tmpfs_med[lsl]}")" \
        "$(ratio "$cold_lsl" "${tmpfs_med[lsl]}")"
fi
echo
echo "load average at end: $(loadavg)"
if [ -n "$rss_pid" ]; then
    echo "daemon (pid $rss_pid) RSS: $(mb "$rss_mount") after mount, $(mb "$rss_runs") after the runs (peak $(mb "$hwm_runs"))"
else
    echo "daemon RSS: unknown (daemon pid not found)"
fi
