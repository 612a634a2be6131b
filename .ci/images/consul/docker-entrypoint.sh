#!/usr/bin/dumb-init /bin/sh
# shellcheck shell=sh
# Entry point with the behaviour of the official consul image's (dumb-init reaps and forwards signals):
#   agent ARGS   -> consul agent -data-dir=/consul/data -config-dir=/consul/config [-bind=..] [-client=..] ARGS
#   -flag ...    -> consul -flag ...
#   SUBCOMMAND   -> consul SUBCOMMAND ...      (version, members, operator, kv, info, ...)
#   anything else runs as given (sh, curl, ...).
# CONSUL_BIND_INTERFACE / CONSUL_CLIENT_INTERFACE: interface names whose IPv4 address becomes
#   -bind / -client.  CONSUL_LOCAL_CONFIG: JSON written to /consul/config/local.json.
# CONSUL_ALLOW_PRIVILEGED_PORTS: set it to let the agent bind ports below 1024.
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
case "${1:-}" in
  -*) set -- consul "$@" ;;
  agent)
    shift
    # $bind_opt and $client_opt stay unquoted: empty ones vanish
    set -- consul agent -data-dir="$DATA_DIR" -config-dir="$CONFIG_DIR" $bind_opt $client_opt "$@" ;;
  version) set -- consul "$@" ;;
  *) if is_subcommand "${1:-}"; then set -- consul "$@"; fi ;;
esac

if [ "${1:-}" = consul ] && [ "$(id -u)" = 0 ]; then
  for d in "$DATA_DIR" "$CONFIG_DIR"; do
    [ "$(stat -c %u "$d")" = "$(id -u consul)" ] || chown -R consul:consul "$d"
  done
  if [ -n "${CONSUL_ALLOW_PRIVILEGED_PORTS+set}" ]; then
    set -- setpriv --reuid=consul --regid=consul --init-groups \
      --inh-caps=+net_bind_service --ambient-caps=+net_bind_service "$@"
  else
    set -- setpriv --reuid=consul --regid=consul --init-groups "$@"
  fi
fi
exec "$@"
