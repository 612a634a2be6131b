#!/usr/bin/env bash
# Adds the extra Debian suites the project needs, pinned low so nothing else is taken from them:
# bullseye for consul 1.8.7 (bookworm has none), trixie for docker-compose v2 and docker-buildx.
set -euo pipefail
changed=0
add_suite() {
  local suite=$1
  local list=/etc/apt/sources.list.d/$suite.list
  if [ ! -f "$list" ]; then
    echo "deb http://deb.debian.org/debian $suite main" > "$list"
    printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$suite" > "/etc/apt/preferences.d/$suite-low"
    changed=1
  fi
}
add_suite bullseye
add_suite trixie
if [ "$changed" = 1 ] || [ ! -f /var/lib/apt/periodic/.ci-updated ]; then
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/.ci-updated
fi
