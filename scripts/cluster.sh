#!/usr/bin/env bash
# Starts a 3-node facesearch cluster on loopback, NATS JetStream embedded in
# each node, and stops every node on Ctrl-C (or when one of them exits).
#
#   node  API (Rekognition endpoint)   NATS client       NATS routes       data
#   n1    http://127.0.0.1:8081        127.0.0.1:4231    127.0.0.1:6231    ./data/cluster/n1
#   n2    http://127.0.0.1:8082        127.0.0.1:4232    127.0.0.1:6232    ./data/cluster/n2
#   n3    http://127.0.0.1:8083        127.0.0.1:4233    127.0.0.1:6233    ./data/cluster/n3
#
# Usage: scripts/cluster.sh [BINARY]   (default: bin/facesearch)
# Environment: DATA (default ./data/cluster), READ_CONSISTENCY (default linearizable).
set -eu

bin=${1:-bin/facesearch}
data=${DATA:-./data/cluster}
consistency=${READ_CONSISTENCY:-linearizable}
routes=nats-route://127.0.0.1:6231,nats-route://127.0.0.1:6232,nats-route://127.0.0.1:6233

# prefix labels each line of a node's log with its name, line by line.
prefix() {
	while IFS= read -r line; do printf '%s | %s\n' "$1" "$line"; done
}

pids=""
stop() {
	trap - INT TERM EXIT
	for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in $pids; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop; exit 130' INT TERM
trap stop EXIT

for i in 1 2 3; do
	mkdir -p "$data/n$i"
	"$bin" serve --listen "127.0.0.1:808$i" --data "$data/n$i" --node-name "n$i" \
		--nats-listen "127.0.0.1:423$i" --nats-cluster-listen "127.0.0.1:623$i" --nats-routes "$routes" \
		--read-consistency "$consistency" > >(prefix "n$i") 2>&1 &
	pids="$pids $!"
done
echo "facesearch cluster: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083 (Ctrl-C stops all three)"
# Any node exiting stops the others.
while :; do
	for pid in $pids; do
		if ! kill -0 "$pid" 2>/dev/null; then exit 1; fi
	done
	sleep 1
done
