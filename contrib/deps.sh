#!/bin/sh
# Install what infrafs needs to build, test and run, if anything is missing
# (Debian 12 or later, as root). Safe to run again.
set -e
packages="meson ninja-build pkg-config gcc libfuse3-dev fuse3 libcurl4-openssl-dev
libjson-c-dev libglib2.0-dev libsystemd-dev libmicrohttpd-dev python3 python3-pytest ca-certificates
openssl scdoc man-db"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "infrafs: missing packages:$missing; run this script as root" >&2
        exit 1
    fi
    echo "infrafs: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
fi
