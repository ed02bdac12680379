#!/bin/sh
# Runs `go ARGS...` on this module with no network: GOPATH mode (GO111MODULE=off) over
# Debian's Go library sources in /usr/share/gocode (packages golang-google-grpc-dev,
# golang-google-protobuf-dev, golang-google-genproto-dev,
# golang-github-golang-protobuf-1-5-dev; see .ci/deps-go.sh).
#
#   clients/go/offline-go.sh test ./...
#   clients/go/offline-go.sh vet ./...
#
# Why GOPATH mode: in module mode Go must read the go.mod of every module in the graph,
# and grpc 1.33's go.mod (go 1.11, so no graph pruning) requires envoyproxy, cncf/udpa,
# glog, uuid... which Debian does not ship at those versions, so GOPROXY=off fails.
# GOPATH mode reads only the packages actually imported, which Debian has.
# The module path example.com/authsvc/clients/go is mapped into a throwaway GOPATH by a
# symlink to this folder; the Go build cache (GOCACHE) is the usual one, so reruns are fast.
set -eu
here=$(cd "$(dirname "$0")" && pwd -P)
gocode=${AUTHSVC_GOCODE:-/usr/share/gocode}
module=example.com/authsvc/clients/go
gopath=$(mktemp -d "${TMPDIR:-/tmp}/authsvc-gopath.XXXXXX")
trap 'rm -rf "$gopath"' EXIT INT TERM
mkdir -p "$gopath/src/$(dirname "$module")"
ln -s "$here" "$gopath/src/$module"
cd "$gopath/src/$module"
# Go needs a build cache folder: the usual one under $HOME, or one in TMPDIR without HOME.
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
	export GOCACHE="${TMPDIR:-/tmp}/authsvc-go-build-cache"
fi
status=0
PWD="$gopath/src/$module" GO111MODULE=off GOPATH="$gopath:$gocode" GOFLAGS= GOPROXY=off \
	go "$@" || status=$?
exit $status
