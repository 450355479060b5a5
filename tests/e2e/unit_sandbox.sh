#!/bin/sh
# Runs COMMAND under the part of conf/mlvpn-rs@.service's sandbox that can
# be reproduced without systemd. Run it in a new mount namespace of its own
# (`unshare --mount --propagation private`): every mount below is private to
# it and disappears with it.
#
#   CapabilityBoundingSet=  setpriv --bounding-set (no inheritable caps)
#   NoNewPrivileges=yes     setpriv --no-new-privs
#   ProtectSystem=strict    every mount read-only but /dev, /proc, /sys
#   ReadWritePaths=         those directories writable again
#   PrivateTmp=yes          an empty tmpfs on /tmp and /var/tmp
#   ProtectHome=yes         /home, /root and /run/user empty and inaccessible
#   ProtectKernelTunables=  /proc/sys and /sys read-only
#   ProtectControlGroups=   /sys/fs/cgroup read-only
#   UMask=                  umask
# The system-call filters (RestrictAddressFamilies=, MemoryDenyWriteExecute=,
# SystemCallArchitectures=, RestrictNamespaces=, ...) are not reproduced.
#
# Usage: unit_sandbox.sh BOUNDING_SET UMASK RW_PATHS KEEP_DIR COMMAND...
#   BOUNDING_SET  setpriv form, e.g. -all,+net_admin,+setuid
#   RW_PATHS      the unit's ReadWritePaths, separated by ':'
#   KEEP_DIR      a directory under /tmp (the test's config and keys) that
#                 stays visible at its path, read-only, as /etc/mlvpn-rs
#                 would be under ProtectSystem=strict
#   COMMAND       its program is first installed into KEEP_DIR, as the
#                 package installs /usr/bin/mlvpn-rs: a build under /tmp or
#                 /root (a CI clone) would vanish behind PrivateTmp or
#                 ProtectHome
set -eu
caps=$1 mask=$2 rw=$3 keep=$4
shift 4

installed=$keep/$(basename "$1")
ln -f "$1" "$installed" 2>/dev/null || cp "$1" "$installed"
shift
set -- "$installed" "$@"

ro_bind() { mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"; }

# The test's files, reachable after /tmp is replaced.
exec 3<"$keep"

# ProtectSystem=strict. /run/netns holds namespace files (nsfs), which the
# daemon does not write either way.
findmnt -rn -o TARGET,FSTYPE | while read -r target fstype; do
  case $target in
    /dev | /dev/* | /proc | /proc/* | /sys | /sys/*) continue ;;
  esac
  [ "$fstype" = nsfs ] && continue
  mount -o remount,bind,ro "$target"
done
ro_bind /proc/sys
ro_bind /sys
[ -d /sys/fs/cgroup ] && ro_bind /sys/fs/cgroup

# ReadWritePaths.
old_ifs=$IFS IFS=:
for p in $rw; do
  mkdir -p "$p" 2>/dev/null || test -d "$p"
  mount --bind "$p" "$p"
  mount -o remount,bind,rw "$p"
done
IFS=$old_ifs

# PrivateTmp; then the test's directory again, read-only.
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
mkdir -p "$keep"
mount --no-canonicalize --bind /proc/self/fd/3 "$keep"
mount -o remount,bind,ro "$keep"
exec 3<&-

# ProtectHome=yes.
for h in /home /root /run/user; do
  [ -d "$h" ] && mount -t tmpfs -o ro,mode=000 tmpfs "$h"
done

umask "$mask"
exec setpriv --bounding-set "$caps" --inh-caps -all --no-new-privs -- "$@"
