#!/usr/bin/env bash
# Installs what clients/go needs from Debian (no Go module proxy is used): the Go
# toolchain, the protoc plugins that generate clients/go/authsvcv1, and the Go library
# sources (under /usr/share/gocode) that clients/go/offline-go.sh builds against.
# Idempotent: when every package is installed it returns at once without apt-get.
set -euo pipefail
packages=(
  golang-go                            # go 1.19 (bookworm)
  protobuf-compiler                    # protoc and the well-known types
  protoc-gen-go                        # 1.28.1
  protoc-gen-go-grpc                   # 1.33.3 (reports "1.0")
  golang-google-grpc-dev               # google.golang.org/grpc 1.33.3
  golang-google-protobuf-dev           # google.golang.org/protobuf 1.28.1
  golang-google-genproto-dev           # googleapis/rpc/errdetails
  golang-github-golang-protobuf-1-5-dev # github.com/golang/protobuf 1.5 (not the 1.3 alternative)
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
echo "installing from Debian: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
