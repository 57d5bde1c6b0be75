#!/bin/sh
# Install mount.infrafs and mount.fuse.infrafs so that /etc/fstab entries and
# `mount -t fuse.infrafs` find infrafs (run by meson install).
set -e
sbindir="$1"
bindir="$2"
dest="${DESTDIR}${MESON_INSTALL_PREFIX}/${sbindir}"
mkdir -p "$dest"
for name in mount.infrafs mount.fuse.infrafs; do
    ln -sf "${MESON_INSTALL_PREFIX}/${bindir}/infrafs" "$dest/$name"
done
