#!/usr/bin/env bash
# Makes a Docker Swarm of $SWARM_TEST_NODES (3) nodes on this one machine, for tests:
#   - each node is a Docker-in-Docker container (local/swarm-node, .ci/images/swarm-node) named
#     swarm-test-nodeN on the bridge network swarm-test-net, with its own volume for /var/lib/docker
#     (overlay2 on the host's file system; overlay2 inside the host's overlay2 is refused) and its
#     Docker API on a Unix socket at $SWARM_TEST_DIR/nodeN/docker.sock (no TCP port);
#   - node1 runs `swarm init`, the others join as managers: three managers keep the swarm's own
#     quorum when one node dies (the kill test), and any of them can deploy;
#   - the IMAGEs given are copied into every node (docker save | docker load: there is no registry).
# Not --privileged (refused on hosts whose bounding set lacks CAP_SYS_RESOURCE): every capability
# but that one, no seccomp/AppArmor, writable /sys/fs/cgroup of the host's cgroup namespace.
# Usage: scripts/swarm/up.sh [IMAGE...]      (any swarm of the same prefix is torn down first)
#   then: DOCKER_HOST=unix:///tmp/swarm-test/node1/docker.sock docker node ls
# Prints one line per node on stdout: NAME IP SOCKET. Tear down with scripts/swarm/down.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

docker image inspect "$SWARM_NODE_IMAGE" >/dev/null 2>&1 \
  || die "$SWARM_NODE_IMAGE missing: run .ci/images.sh (it builds it)"
"$HERE/down.sh" >/dev/null
mkdir -p "$SWARM_TEST_DIR"
chmod 700 "$SWARM_TEST_DIR"
docker network create --label "$LABEL" "$SWARM_TEST_NET" >/dev/null

for i in $(seq 1 "$SWARM_TEST_NODES"); do
  n=$(node_name "$i")
  mkdir -p "$SWARM_TEST_DIR/node$i"
  docker volume create --label "$LABEL" "$n-data" >/dev/null
  docker run -d --name "$n" --hostname "$n" --label "$LABEL" --network "$SWARM_TEST_NET" \
    --cap-add ALL --cap-drop SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
    -v "$n-data:/var/lib/docker" -v "$SWARM_TEST_DIR/node$i:/swarm-test" \
    "$SWARM_NODE_IMAGE" --host unix:///var/run/docker.sock --host unix:///swarm-test/docker.sock >/dev/null
done
for i in $(seq 1 "$SWARM_TEST_NODES"); do
  ok=0
  for _ in $(seq 1 120); do
    if docker -H "$(node_sock "$i")" info >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.5
  done
  [ "$ok" = 1 ] || { docker logs --tail 30 "$(node_name "$i")" >&2 || true; die "dockerd in $(node_name "$i") did not answer within 60 s"; }
done
say "${SWARM_TEST_NODES} dockerd up"

ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$SWARM_TEST_NET\").IPAddress}}" "$(node_name "$1")"; }
ip1=$(ip_of 1)
docker -H "$(node_sock 1)" swarm init --advertise-addr "$ip1" >/dev/null
token=$(docker -H "$(node_sock 1)" swarm join-token -q manager)
for i in $(seq 2 "$SWARM_TEST_NODES"); do
  docker -H "$(node_sock "$i")" swarm join --token "$token" --advertise-addr "$(ip_of "$i")" "$ip1:2377" >/dev/null
done
say "swarm of ${SWARM_TEST_NODES} managers"

if [ "$#" -gt 0 ]; then
  tar=$SWARM_TEST_DIR/images.tar
  docker save -o "$tar" "$@"
  pids=()
  for i in $(seq 1 "$SWARM_TEST_NODES"); do
    docker -H "$(node_sock "$i")" load -q -i "$tar" >/dev/null & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "docker load into a node failed"; done
  rm -f "$tar"
  say "images loaded: $*"
fi

for i in $(seq 1 "$SWARM_TEST_NODES"); do
  echo "$(node_name "$i") $(ip_of "$i") $(node_sock "$i")"
done
