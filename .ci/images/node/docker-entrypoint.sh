#!/bin/sh
# Runs the command given; options, or a first word that is no command on PATH, go to node
# (`docker run IMAGE -e '...'` and `docker run IMAGE app.js` run node).
set -e
case "${1:-}" in
  '') set -- node ;;
  -*) set -- node "$@" ;;
  *) command -v "$1" >/dev/null 2>&1 || set -- node "$@" ;;
esac
exec "$@"
