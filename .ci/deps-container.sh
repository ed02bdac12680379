#!/usr/bin/env bash
# Installs what `make container-test` needs from Debian's packages (as root). Tried on
# this machine, rootful podman needs only: podman; runc (crun refuses this machine's
# cgroup v1 "hybrid" layout); netavark and iptables for the default bridge network and
# published ports ("netavark: No such file or directory" without iptables); conmon;
# debootstrap for the local base image. The rootless helpers (uidmap, slirp4netns,
# fuse-overlayfs) and aardvark-dns are not needed: storage is the kernel's overlay.
# Idempotent: does nothing (not even `apt-get update`) when everything is installed.
set -euo pipefail
packages=(podman runc conmon netavark iptables debootstrap ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Other sessions on the machine may hold the dpkg lock for a while: wait for it.
apt-get update -q -o DPkg::Lock::Timeout=600
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
