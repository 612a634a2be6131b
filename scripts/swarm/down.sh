#!/usr/bin/env bash
# Tears down what scripts/swarm/up.sh made, completely: the node containers (and with them every
# container, network, volume and image inside them), their /var/lib/docker volumes, the network
# swarm-test-net and $SWARM_TEST_DIR. Finds them by the label swarm-test.cluster=<prefix>, so it
# touches nothing else. Safe to run when nothing is there.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
ids=$(docker ps -aq --filter "label=$LABEL")
[ -z "$ids" ] || docker rm -f -v $ids >/dev/null
vols=$(docker volume ls -q --filter "label=$LABEL")
[ -z "$vols" ] || docker volume rm -f $vols >/dev/null
nets=$(docker network ls -q --filter "label=$LABEL")
[ -z "$nets" ] || docker network rm $nets >/dev/null
rm -rf "$SWARM_TEST_DIR"
say "torn down ($SWARM_TEST_PREFIX)"
