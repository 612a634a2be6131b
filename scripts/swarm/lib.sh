# Shared by up.sh and down.sh: names and paths of the test swarm. Every Docker object made on the
# host (containers, network, volumes) starts with $SWARM_TEST_PREFIX and carries the label
# swarm-test.cluster=$SWARM_TEST_PREFIX, so down.sh finds exactly what up.sh made.
SWARM_TEST_PREFIX=${SWARM_TEST_PREFIX:-swarm-test}
case "$SWARM_TEST_PREFIX" in swarm-test*) ;; *) echo "SWARM_TEST_PREFIX must start with swarm-test" >&2; exit 2 ;; esac
SWARM_TEST_NODES=${SWARM_TEST_NODES:-3}
# Each node's Docker API is a Unix socket in here (root-only, no TCP port): $SWARM_TEST_DIR/nodeN/docker.sock
SWARM_TEST_DIR=${SWARM_TEST_DIR:-/tmp/$SWARM_TEST_PREFIX}
SWARM_NODE_IMAGE=${SWARM_NODE_IMAGE:-local/swarm-node:20.10}
SWARM_TEST_NET=$SWARM_TEST_PREFIX-net
LABEL=swarm-test.cluster=$SWARM_TEST_PREFIX
node_name() { echo "$SWARM_TEST_PREFIX-node$1"; }
node_sock() { echo "unix://$SWARM_TEST_DIR/node$1/docker.sock"; }
say() { echo "[swarm +${SECONDS}s] $*" >&2; }
die() { echo "[swarm] ERROR: $*" >&2; exit 1; }
