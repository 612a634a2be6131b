#!/usr/bin/env bash
# Installs a Docker engine from Debian's packages and starts dockerd in the background.
#   docker.io + debootstrap from bookworm; docker-compose (Compose v2) + docker-buildx from trixie
#   (only those two packages: their dependencies come from bookworm).
# Idempotent: skips apt when everything is installed and skips starting dockerd when it answers.
# Fails (non-zero, message on stderr, tail of the daemon log) when the engine cannot be made to work.
#
# Env knobs (all optional):
#   DOCKERD_LOG             daemon log file               (default /var/log/dockerd-ci.log)
#   DOCKERD_STORAGE_DRIVER  force a storage driver        (default: overlay2 if an overlay mount works,
#                           else fuse-overlayfs when /dev/fuse exists, else vfs)
#   DOCKERD_WAIT            seconds to wait for the daemon (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG=${DOCKERD_LOG:-/var/log/dockerd-ci.log}
WAIT=${DOCKERD_WAIT:-60}
SOCK=/var/run/docker.sock
DATA_ROOT=/var/lib/docker
PLUGIN_DIR=/usr/libexec/docker/cli-plugins
APT=(apt-get -o DPkg::Lock::Timeout=300 -y -q --no-install-recommends)
export DEBIAN_FRONTEND=noninteractive

say() { echo "[install-docker +${SECONDS}s] $*" >&2; }
die() {
  say "ERROR: $*"
  if [ -f "$LOG" ]; then say "last lines of $LOG:"; tail -n 40 "$LOG" >&2 || true; fi
  exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# ---------------------------------------------------------------- packages
if ! installed docker.io || ! installed debootstrap || ! installed docker-compose \
   || ! installed docker-buildx || ! installed iptables; then
  bash "$HERE/apt-sources.sh"
  # Recommends are left out on purpose: docker.io recommends needrestart/apparmor/criu..., and the
  # trixie packages recommend trixie's docker-cli, which Breaks bookworm's docker.io.
  "${APT[@]}" install docker.io iptables debootstrap \
    || die "apt-get install docker.io debootstrap failed"
  # pkg/suite pins only these two packages to trixie; their deps (libc6 >= 2.34) come from bookworm.
  "${APT[@]}" install docker-compose/trixie docker-buildx/trixie \
    || die "apt-get install docker-compose/trixie docker-buildx/trixie failed"
fi
for f in /usr/sbin/dockerd /usr/bin/docker "$PLUGIN_DIR/docker-compose" "$PLUGIN_DIR/docker-buildx" \
         /usr/sbin/debootstrap; do
  [ -x "$f" ] || die "$f missing after install"
done
case "$("$PLUGIN_DIR/docker-compose" version --short 2>/dev/null)" in
  2.*) ;;
  *) die "docker-compose plugin is not Compose v2: $("$PLUGIN_DIR/docker-compose" version 2>&1 || true)" ;;
esac

# ---------------------------------------------------------------- storage driver
probe_overlay() {
  # overlay2 needs a working overlay mount on the filesystem that holds $DATA_ROOT.
  local d
  mkdir -p "$DATA_ROOT"
  d=$(mktemp -d "$DATA_ROOT/.ci-overlay-probe.XXXXXX")
  mkdir -p "$d"/{lower,upper,work,merged}
  echo x > "$d/lower/f"
  local ok=1
  if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
    # a copy-up must work too
    if echo y >> "$d/merged/f" 2>/dev/null && [ -f "$d/upper/f" ]; then ok=0; fi
    umount "$d/merged" || true
  fi
  rm -rf "$d"
  return $ok
}
pick_driver() {
  if [ -n "${DOCKERD_STORAGE_DRIVER:-}" ]; then echo "$DOCKERD_STORAGE_DRIVER"; return; fi
  if probe_overlay; then echo overlay2; return; fi
  if [ -c /dev/fuse ]; then
    installed fuse-overlayfs || { bash "$HERE/apt-sources.sh"; "${APT[@]}" install fuse-overlayfs >&2; } \
      && { echo fuse-overlayfs; return; }
  fi
  echo vfs
}

# ---------------------------------------------------------------- daemon
docker_ok() { /usr/bin/docker -H "unix://$SOCK" info >/dev/null 2>&1; }

if docker_ok; then
  say "dockerd already answers on $SOCK"
else
  if pgrep -x dockerd >/dev/null 2>&1; then
    # a dockerd exists but does not answer (yet): give it the same bounded wait below
    say "dockerd process found but not answering yet; waiting"
  else
    driver=$(pick_driver)
    args=(--host "unix://$SOCK" --data-root "$DATA_ROOT")
    cfg=/etc/docker/daemon.json
    # flags may not repeat keys of daemon.json (dockerd refuses to start then)
    if ! { [ -f "$cfg" ] && grep -q '"storage-driver"' "$cfg"; }; then args+=(--storage-driver "$driver"); fi
    # Containers' MTU must not exceed the uplink's (1400 here) or TLS through the proxy stalls.
    mtu=$(ip -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n1)
    mtu=${mtu:+$(cat "/sys/class/net/$mtu/mtu" 2>/dev/null || true)}
    if [ -n "$mtu" ] && [ "$mtu" -lt 1500 ] && ! { [ -f "$cfg" ] && grep -q '"mtu"' "$cfg"; }; then
      args+=(--mtu "$mtu")
    fi
    rm -f /var/run/docker.pid
    mkdir -p "$(dirname "$LOG")"
    say "starting dockerd ${args[*]} (log: $LOG)"
    echo "=== $(date -Is) starting dockerd ${args[*]}" >> "$LOG"
    # setsid + nohup: the daemon outlives this script and its process group.
    setsid nohup /usr/sbin/dockerd "${args[@]}" >> "$LOG" 2>&1 < /dev/null &
  fi
  for ((i = 0; i < WAIT * 2; i++)); do
    docker_ok && break
    if [ -n "${!:-}" ] && ! kill -0 "$!" 2>/dev/null && ! pgrep -x dockerd >/dev/null; then
      die "dockerd exited during startup"
    fi
    sleep 0.5
  done
  docker_ok || die "dockerd did not answer on $SOCK within ${WAIT}s"
  say "dockerd is up"
fi

# ---------------------------------------------------------------- client + plugins
# The `docker` first in PATH may be another client (here /usr/local/bin/docker, 28.x, a static build).
# It must reach this daemon and see Debian's compose/buildx plugins, which live in $PLUGIN_DIR.
DOCKER=$(command -v docker || true)
[ -n "$DOCKER" ] || die "no docker in PATH"
if ! docker compose version >/dev/null 2>&1 || ! docker buildx version >/dev/null 2>&1; then
  # Not all clients search $PLUGIN_DIR: link the plugins into a directory every CLI searches.
  mkdir -p /usr/local/lib/docker/cli-plugins
  ln -sf "$PLUGIN_DIR/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
  ln -sf "$PLUGIN_DIR/docker-buildx" /usr/local/lib/docker/cli-plugins/docker-buildx
fi
docker info >/dev/null 2>&1 || die "'$DOCKER info' fails: $(docker info 2>&1 | tail -n 5)"
docker compose version >/dev/null 2>&1 || die "'$DOCKER compose version' fails: $(docker compose version 2>&1 | tail -n 3)"
docker buildx version >/dev/null 2>&1 || die "'$DOCKER buildx version' fails: $(docker buildx version 2>&1 | tail -n 3)"

say "client:  $DOCKER $(docker version --format '{{.Client.Version}}' 2>/dev/null)"
say "server:  $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)"
say "storage: $(docker info --format '{{.Driver}}' 2>/dev/null)"
say "compose: $(docker compose version --short 2>/dev/null)"
say "buildx:  $(docker buildx version 2>/dev/null)"
