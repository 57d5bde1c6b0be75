#!/bin/sh
# Install what is missing, build, start the API simulator and mount a demo
# tree at ${1:-/mnt/infra}. Unmount with: fusermount3 -u /mnt/infra
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
mnt="${1:-/mnt/infra}"
cd "$top"
sh contrib/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

mnt=$(realpath -m "$mnt")
# One state directory per mountpoint, so that demos at other mountpoints
# (each with its simulator on free ports) are left alone.
state="${XDG_RUNTIME_DIR:-/tmp}/infrafs-demo/$(printf '%s' "$mnt" | tr '/' '%')"
mkdir -p "$state"
if grep -qs " $mnt fuse" /proc/self/mounts; then # also when its daemon died
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt"
fi
mkdir -p "$mnt"
# This mountpoint's earlier simulator, if it still runs; never another's.
if [ -f "$state/sim.pid" ] && kill -0 "$(cat "$state/sim.pid")" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$(cat "$state/sim.pid")/cmdline" | grep -qF -- "--ports-file $state/ports.json"; then
    kill "$(cat "$state/sim.pid")"
fi
rm -f "$state/ports.json"
nohup ./contrib/infrafs-sim --free-ports --ports-file "$state/ports.json" --quiet \
    --demo-config "$state/config" \
    >"$state/sim.log" 2>&1 &
echo $! >"$state/sim.pid"
i=0
while [ ! -s "$state/ports.json" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "simulator did not start; see $state/sim.log" >&2; exit 1; }
    sleep 0.1
done
# Its disk cache and action log stay with the demo, not the user's own.
./build/infrafs -o config="$state/config",cache_dir="$state/cache" "$mnt"
cat <<MSG

Try:
  ls $mnt/vps/hostup/
  cat $mnt/vps/hostup/*/power_state
  cat $mnt/providers/hostup/state
  cd \$(dirname \$(grep -lx running $mnt/vps/hostup/*/power_state | head -1)) && echo restart > power && cat operation/wait
  cat $mnt/actions                               # who did what, and how it ended
  cat $mnt/vps/heo/*/status                      # HEO: the last request, no live state
  echo 1 > $mnt/vps/deployhq/\$(ls $mnt/vps/deployhq | head -1)/sync
  grep -r . $mnt/servers/hostatlas/*/services/*/status
  echo 1 > $mnt/heartbeats/hostatlas/\$(ls $mnt/heartbeats/hostatlas | head -1)/ping
  grep -l running $mnt/deployments/dokploy/*/status
Stop: fusermount3 -u '$mnt'; kill \$(cat '$state/sim.pid')
MSG
