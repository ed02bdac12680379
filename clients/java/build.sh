#!/usr/bin/env bash
# Builds the Java client of authsvc with plain javac and Debian's jars; no Maven, no Gradle.
#
#   clients/java/build.sh [OUT]     (OUT defaults to clients/java/build, which git ignores)
#
# 1. Generates Java from the contract on every build, so nothing generated is committed
#    and nothing can go stale when protos/ grows:
#    - authsvc.v1 messages and the AuthService stub with `buf generate` and the top-level
#      buf.gen.java.yaml (java_package com.example.authsvc.v1), through protoc's built-in
#      Java generator and Debian's grpc_java_plugin;
#    - google.rpc Status, ErrorInfo, BadRequest and RetryInfo with protoc from
#      third_party/googleapis (java_package com.google.rpc): no Debian jar carries them,
#      and grpc-protobuf's StatusProto needs com.google.rpc.Status at run time.
# 2. Compiles generated code, the wrapper (src/main) and the end-to-end runner (src/test)
#    into OUT/classes, for Java 11 and later.
# 3. Writes OUT/classpath: the run-time classpath (OUT/classes, OUT/native for TLS, the
#    Debian jars).
#
# Needs: protoc, grpc_java_plugin, a JDK (javac), the jars listed in JARS below
# (.ci/deps-java.sh installs them) and node_modules/.bin/buf (`make install`).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$(mkdir -p "${1:-$HERE/build}" && cd "${1:-$HERE/build}" && pwd)"
JAVA_DIR="${JAVA_DIR:-/usr/share/java}"
BUF="${BUF:-$ROOT/node_modules/.bin/buf}"
GRPC_JAVA_PLUGIN="${GRPC_JAVA_PLUGIN:-$(command -v grpc_java_plugin || true)}"

# Run-time dependencies of grpc-java 1.41 with the Netty transport, as Debian names them.
JARS=(
  grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub
  protobuf guava perfmark-api gson
  netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler
  netty-resolver netty-transport netty-tcnative
)

# Compile time only: grpc_java_plugin 1.41 marks the stub @javax.annotation.Generated
# (retention SOURCE), which Java 11+ no longer ships.
COMPILE_ONLY_JARS=(geronimo-annotation-1.3-spec)

fail() { echo "build.sh: $*" >&2; exit 1; }
command -v protoc >/dev/null || fail "protoc is missing: run .ci/deps-java.sh"
command -v javac >/dev/null || fail "javac is missing: run .ci/deps-java.sh"
[ -n "$GRPC_JAVA_PLUGIN" ] || fail "grpc_java_plugin is missing: run .ci/deps-java.sh"
[ -x "$BUF" ] || fail "$BUF is missing: run make install"
CLASSPATH_JARS=""
for jar in "${JARS[@]}"; do
  [ -f "$JAVA_DIR/$jar.jar" ] || fail "$JAVA_DIR/$jar.jar is missing: run .ci/deps-java.sh"
  CLASSPATH_JARS="$CLASSPATH_JARS:$JAVA_DIR/$jar.jar"
done
CLASSPATH_JARS="${CLASSPATH_JARS#:}"
COMPILE_CLASSPATH="$CLASSPATH_JARS"
for jar in "${COMPILE_ONLY_JARS[@]}"; do
  [ -f "$JAVA_DIR/$jar.jar" ] || fail "$JAVA_DIR/$jar.jar is missing: run .ci/deps-java.sh"
  COMPILE_CLASSPATH="$COMPILE_CLASSPATH:$JAVA_DIR/$jar.jar"
done

# TLS: gRPC needs ALPN, and Debian's Netty has its JDK ALPN support patched out, so TLS goes
# through netty-tcnative (OpenSSL). Netty looks for libnetty_tcnative_<os>_<arch>.so under
# META-INF/native on the classpath; Debian ships it as jni/libnetty-tcnative.so.
TCNATIVE_SO="$(find /usr/lib /usr/lib64 -name libnetty-tcnative.so -print -quit 2>/dev/null || true)"
[ -n "$TCNATIVE_SO" ] || fail "libnetty-tcnative.so is missing: run .ci/deps-java.sh"
case "$(uname -m)" in
  x86_64) NATIVE_ARCH=x86_64 ;;
  aarch64 | arm64) NATIVE_ARCH=aarch_64 ;;
  *) NATIVE_ARCH="$(uname -m)" ;;
esac

rm -rf "$OUT/gen" "$OUT/classes" "$OUT/plugins" "$OUT/native"
mkdir -p "$OUT/gen" "$OUT/classes" "$OUT/plugins" "$OUT/native/META-INF/native"
ln -s "$TCNATIVE_SO" "$OUT/native/META-INF/native/libnetty_tcnative_linux_$NATIVE_ARCH.so"

# buf runs `protoc-gen-grpc-java` from PATH; Debian installs it as grpc_java_plugin.
ln -s "$GRPC_JAVA_PLUGIN" "$OUT/plugins/protoc-gen-grpc-java"
(cd "$ROOT" && PATH="$OUT/plugins:$PATH" "$BUF" generate --template buf.gen.java.yaml -o "$OUT")
protoc -I "$ROOT/third_party/googleapis" --java_out="$OUT/gen/java" \
  "$ROOT"/third_party/googleapis/google/rpc/*.proto

find "$OUT/gen/java" "$HERE/src/main/java" "$HERE/src/test/java" -name '*.java' >"$OUT/sources"
javac --release 11 -nowarn -encoding UTF-8 -cp "$COMPILE_CLASSPATH" -d "$OUT/classes" @"$OUT/sources"

echo "$OUT/classes:$OUT/native:$CLASSPATH_JARS" >"$OUT/classpath"
echo "built $(grep -c . "$OUT/sources") Java sources into $OUT/classes"
