#!/usr/bin/env bash
# Deploys docker-stack.yml to the swarm DOCKER_HOST points at (a manager):
#   1. the gossip encryption key: made once with `consul keygen` on the manager and kept only as the
#      swarm secret $CONSUL_GOSSIP_SECRET (default <stack>-gossip); it never touches a file;
#   2. docker stack deploy.
# Idempotent: run it again after editing docker-stack.yml. Images must be pullable by every node, or
# already on every node with SWARM_RESOLVE_IMAGE=never (the test swarm: no registry).
# Usage: scripts/swarm/deploy.sh [STACK]      (default consul-stack)
#   env: CONSUL_IMAGE, GATEWAY_IMAGE, WEB_IMAGE, REGISTRATOR_IMAGE, SOCKET_PROXY_IMAGE, WEB_REPLICAS,
#        GATEWAY_PORT, STACK_SUBNET ... (the ${VAR:-default}s of docker-stack.yml)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK=${1:-consul-stack}
export CONSUL_GOSSIP_SECRET=${CONSUL_GOSSIP_SECRET:-$STACK-gossip}
CONSUL_IMAGE=${CONSUL_IMAGE:-hashicorp/consul:1.22}

if ! docker secret inspect "$CONSUL_GOSSIP_SECRET" >/dev/null 2>&1; then
  # the key is the last line (consul may print a notice before it)
  key=$(docker run --rm --network none "$CONSUL_IMAGE" keygen | tail -n 1)
  echo "$key" | grep -Eq '^[A-Za-z0-9+/]{22,}={0,2}$' || { echo "deploy: unexpected 'consul keygen' output" >&2; exit 1; }
  printf '{"encrypt": "%s"}\n' "$key" | docker secret create --label "stack=$STACK" "$CONSUL_GOSSIP_SECRET" - >/dev/null
  echo "deploy: new gossip key in secret $CONSUL_GOSSIP_SECRET" >&2
fi
cd "$ROOT"
docker stack deploy --prune --resolve-image "${SWARM_RESOLVE_IMAGE:-always}" -c docker-stack.yml "$STACK"
