#!/usr/bin/env bash
# Installs what the Java client (clients/java) needs to build and run its end-to-end test:
# a JDK, protoc, Debian's grpc-java plugin and jars (Netty transport, netty-tcnative for
# TLS), and the compile-only javax.annotation jar. Idempotent: when every package is
# installed already it only checks, without touching apt.
set -euo pipefail

PACKAGES=(
  default-jdk-headless
  protobuf-compiler
  protobuf-compiler-grpc-java-plugin
  libgrpc-java
  libprotobuf-java
  libguava-java
  libperfmark-java
  libgoogle-gson-java
  libnetty-java
  libnetty-tcnative-java
  libnetty-tcnative-jni
  libgeronimo-annotation-1.3-spec-java
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "deps-java: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt run (e.g. a parallel job) instead of failing on its lock.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
