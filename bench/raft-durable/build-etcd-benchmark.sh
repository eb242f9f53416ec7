#!/usr/bin/env bash
# Builds etcd's own load generator (`benchmark`, etcd's tools/benchmark) for bench/raft-durable, offline from
# Debian's packages only:
#   - the tool's source from Debian's etcd source package (the upstream tarball of the etcd-server that the
#     bench runs), fetched with apt-get through a private deb-src list (the system's apt sources are untouched);
#   - its Go dependencies from Debian's golang-*-dev packages (etcd's client, gRPC, cobra, ...), compiled in
#     GOPATH mode with Debian's golang-go: no Go module proxy, no download from anywhere but Debian's mirror.
# The binary lands in the cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/swarmkit/etcd-benchmark, or
# $1), where bench/raft-durable finds it without ETCD_BENCHMARK. Idempotent: an existing binary of the same
# etcd version is kept. Needs root for apt-get when a package is missing.
set -euo pipefail

cache="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/swarmkit/etcd-benchmark}"
# The Debian packages the tool's imports come from (tools/benchmark and what it imports of etcd).
packages=(
  golang-go
  etcd-server
  golang-etcd-server-dev
  golang-github-spf13-cobra-dev
  golang-github-dustin-go-humanize-dev
  golang-github-bgentry-speakeasy-dev
  golang-gopkg-cheggaaa-pb.v1-dev
  golang-golang-x-time-dev
)

log() { printf 'build-etcd-benchmark: %s\n' "$*" >&2; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tool is built from the same upstream release as the etcd client source Debian ships.
version=$(dpkg-query -W -f='${Version}' golang-etcd-server-dev)
upstream=${version%%-*}
upstream=${upstream#*:}
bin="$cache/benchmark-$upstream"
if [[ -x $bin ]] && "$bin" --help >/dev/null 2>&1; then
  log "already built: $bin"
  ln -sfn "benchmark-$upstream" "$cache/benchmark"
  echo "$cache/benchmark"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A private apt configuration with Debian's deb-src line for the release the system's sources name: it fetches
# the signed Sources index and the source package into $work and changes nothing in /etc/apt.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1)
mirror=${mirror:-$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null)}
mirror=${mirror:-http://deb.debian.org/debian}
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $codename main" >"$work/apt/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::Cache::Archives=$work/apt/archives"
  -o APT::Sandbox::User=root
)
log "fetching Debian's etcd source package ($version) from $mirror"
apt-get "${apt_opts[@]}" update -qq
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq "etcd=$version" >/dev/null)
tarball=$(ls "$work"/src/etcd_"$upstream".orig.tar.*)

# Only tools/benchmark comes from the tarball; every package it imports is Debian's (/usr/share/gocode).
gopath="$work/gopath"
dest="$gopath/src/go.etcd.io/etcd/tools"
mkdir -p "$dest"
tar -xf "$tarball" -C "$work/src" --wildcards '*/tools/benchmark/*'
mv "$work"/src/*/tools/benchmark "$dest/"

log "compiling with $(go version)"
(
  cd "$dest/benchmark"
  GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$cache/go-build" \
    go build -o "$bin.tmp" .
)
mv "$bin.tmp" "$bin"
ln -sfn "benchmark-$upstream" "$cache/benchmark"
log "built $bin"
echo "$cache/benchmark"
