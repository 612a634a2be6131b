#!/bin/sh
# Runs dockerd (scripts/swarm/up.sh starts the node with --init, which reaps and forwards signals).
# /var/lib/docker is a volume of its own: overlay2 on the host's file system (overlay2 inside the
# host's overlay2 is refused); /run is a tmpfs. up.sh passes the --host sockets.
set -e
rm -f /run/docker.pid /run/docker/containerd/containerd.pid
exec dockerd --storage-driver=overlay2 --log-level=warn "$@"
