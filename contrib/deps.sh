#!/bin/sh
# Install what infrafs needs to build, test and run, if anything is missing
# (Debian 12 or later, as root). Safe to run again.
set -e
packages="meson ninja-build pkg-config gcc libfuse3-dev fuse3 libcurl4-openssl-dev
libjson-c-dev libglib2.0-dev libsystemd-dev libmicrohttpd-dev python3 python3-pytest ca-certificates
openssl scdoc man-db clang clang-format"

install_missing() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
    [ -n "$missing" ] || return 0
    if [ "$(id -u)" != 0 ]; then
        echo "infrafs: missing packages:$missing; run this script as root" >&2
        exit 1
    fi
    echo "infrafs: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
}

# shellcheck disable=SC2086
install_missing $packages
# The fuzz targets (tests/fuzz) link clang's libFuzzer, packaged apart
# under clang's major version.
install_missing "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
