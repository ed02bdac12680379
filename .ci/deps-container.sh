#!/usr/bin/env bash
# Installs what `make container-test` needs from Debian's packages: podman with the runc
# runtime (crun refuses this machine's cgroup v1 "hybrid" layout), debootstrap for the
# local base image, and the helpers podman uses for storage and published ports.
# Idempotent: does nothing (not even `apt-get update`) when everything is installed.
set -euo pipefail
packages=(podman runc debootstrap fuse-overlayfs slirp4netns uidmap iptables
  netavark aardvark-dns conmon ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q -o DPkg::Lock::Timeout=600
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
