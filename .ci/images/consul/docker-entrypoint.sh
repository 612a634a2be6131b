#!/usr/bin/dumb-init /bin/sh
# shellcheck shell=sh
# Entry point with the behaviour of the official consul image's (1.16; a superset of 1.8's):
# dumb-init reaps and forwards signals, and
#   agent ARGS   -> consul agent -data-dir=$CONSUL_DATA_DIR -config-dir=$CONSUL_CONFIG_DIR
#                   [$CONSUL_BIND] [$CONSUL_CLIENT] ARGS
#   -flag ...    -> consul -flag ...
#   SUBCOMMAND   -> consul SUBCOMMAND ...      (version, members, operator, kv, info, keygen, ...)
#   anything else runs as given (sh, curl, ...).
# CONSUL_BIND / CONSUL_CLIENT: options passed as given ("-bind=10.0.0.5"); otherwise
#   CONSUL_BIND_INTERFACE / CONSUL_CLIENT_INTERFACE: interface names whose IPv4 address becomes them.
# CONSUL_DATA_DIR (/consul/data), CONSUL_CONFIG_DIR (/consul/config).
# CONSUL_LOCAL_CONFIG: JSON written to $CONSUL_CONFIG_DIR/local.json.
# Consul runs as CONSUL_UID:CONSUL_GID (default: user consul), after the data and config directories
# are made its own, unless CONSUL_DISABLE_PERM_MGMT is set (then as the container's user).
# CONSUL_ALLOW_PRIVILEGED_PORTS: set it to let the agent bind ports below 1024.
set -e
CONSUL_DATA_DIR=${CONSUL_DATA_DIR:-/consul/data}
CONSUL_CONFIG_DIR=${CONSUL_CONFIG_DIR:-/consul/config}

addr_of() { # first IPv4 address of interface $1
  ip -o -4 addr show dev "$1" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}
if [ -z "$CONSUL_BIND" ] && [ -n "$CONSUL_BIND_INTERFACE" ]; then
  a=$(addr_of "$CONSUL_BIND_INTERFACE")
  [ -n "$a" ] || { echo "Could not find IP for interface '$CONSUL_BIND_INTERFACE', exiting"; exit 1; }
  echo "==> Found address '$a' for interface '$CONSUL_BIND_INTERFACE', setting bind option..."
  CONSUL_BIND="-bind=$a"
fi
if [ -z "$CONSUL_CLIENT" ] && [ -n "$CONSUL_CLIENT_INTERFACE" ]; then
  a=$(addr_of "$CONSUL_CLIENT_INTERFACE")
  [ -n "$a" ] || { echo "Could not find IP for interface '$CONSUL_CLIENT_INTERFACE', exiting"; exit 1; }
  echo "==> Found address '$a' for interface '$CONSUL_CLIENT_INTERFACE', setting client option..."
  CONSUL_CLIENT="-client=$a"
fi
if [ -n "$CONSUL_LOCAL_CONFIG" ]; then
  printf '%s\n' "$CONSUL_LOCAL_CONFIG" > "$CONSUL_CONFIG_DIR/local.json"
fi

is_subcommand() {
  [ -n "$1" ] && consul --help 2>&1 | awk '/^    [a-z]/ { print $1 }' | grep -qxF -- "$1"
}
case "${1:-}" in
  -*) set -- consul "$@" ;;
  agent)
    shift
    # $CONSUL_BIND and $CONSUL_CLIENT stay unquoted: empty ones vanish
    set -- consul agent -data-dir="$CONSUL_DATA_DIR" -config-dir="$CONSUL_CONFIG_DIR" $CONSUL_BIND $CONSUL_CLIENT "$@" ;;
  version) set -- consul "$@" ;;
  *) if is_subcommand "${1:-}"; then set -- consul "$@"; fi ;;
esac

if [ "${1:-}" = consul ] && [ -z "${CONSUL_DISABLE_PERM_MGMT+x}" ] && [ "$(id -u)" = 0 ]; then
  uid=${CONSUL_UID:-$(id -u consul)}
  gid=${CONSUL_GID:-$(id -g consul)}
  # the user's supplementary groups when it has a passwd entry, as su-exec does; else only the gid
  if getent passwd "$uid" >/dev/null; then groups=--init-groups; else groups=--groups=$gid; fi
  for d in "$CONSUL_DATA_DIR" "$CONSUL_CONFIG_DIR"; do
    [ "$(stat -c %u "$d")" = "$uid" ] || chown -R "$uid:$gid" "$d"
  done
  if [ -n "${CONSUL_ALLOW_PRIVILEGED_PORTS+set}" ]; then
    set -- setpriv --reuid="$uid" --regid="$gid" $groups \
      --inh-caps=+net_bind_service --ambient-caps=+net_bind_service "$@"
  else
    set -- setpriv --reuid="$uid" --regid="$gid" $groups "$@"
  fi
fi
exec "$@"
