#!/bin/sh
# Entry point with the behaviour of tecnativa/docker-socket-proxy's: the template becomes
# /tmp/haproxy.cfg (${BIND_CONFIG} filled in), and `haproxy ...` runs in master-worker mode in the
# foreground. Root is needed only to open the host's Docker socket (root:docker 0660); the compose
# file drops every capability.
set -e
ulimit -n 10000 2>/dev/null || true
if [ -z "$BIND_CONFIG" ]; then
  case "$(echo "${DISABLE_IPV6:-0}" | tr '[:upper:]' '[:lower:]')" in
    1|true|yes) BIND_CONFIG=":2375" ;;
    *) BIND_CONFIG="[::]:2375 v4v6" ;;
  esac
fi
sed "s|\${BIND_CONFIG}|$BIND_CONFIG|g" /usr/local/etc/haproxy/haproxy.cfg.template > /tmp/haproxy.cfg
if [ "${1#-}" != "$1" ]; then set -- haproxy "$@"; fi
if [ "$1" = haproxy ]; then shift; set -- haproxy -W -db "$@"; fi
exec "$@"
