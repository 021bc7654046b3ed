#!/usr/bin/env bash
# make demo: the main job of ezrestore on the built-in lab, start to finish.
#   1. bring up a lab: 3 etcd/master hosts and 2 workers, real systemd, sshd, etcd with TLS
#   2. write the seed article's keys (namespace default, pods net-test1 and net-test3)
#   3. take a verified backup with `ezrestore backup`
#   4. lose data: delete pod net-test3
#   5. find which backup still holds it, show the plan, restore
#   6. prove it: net-test3 is back on every member, one leader, one cluster ID
# The Kubernetes components on the lab hosts are stand-ins (no Kubernetes
# binaries here): units with the real names running a long-lived placeholder.
# KEEP=1 leaves the lab up afterwards (take it down with: bin/ezrestore lab down --name demo).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/ezrestore}
NAME=${NAME:-demo}
export EZRESTORE_BASE=${EZRESTORE_BASE:-/var/lib/ezrestore/demo-base}
mkdir -p "$EZRESTORE_BASE"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
lab_etcdctl() { # host, etcdctl args...
	local h=$1; shift
	"$BIN" lab ssh --name "$NAME" "$h" -- ETCDCTL_API=3 /opt/kube/bin/etcdctl \
		--endpoints="https://$h:2379" --cacert=/etc/kubernetes/ssl/ca.pem \
		--cert=/etc/kubernetes/ssl/etcd.pem --key=/etc/kubernetes/ssl/etcd-key.pem "$@"
}

cleanup() {
	if [ "${KEEP:-0}" != 1 ]; then
		say "lab down"
		"$BIN" lab down --name "$NAME" || true
	fi
}
trap cleanup EXIT

say "lab up: a kubeasz-style cluster of real hosts in $EZRESTORE_BASE/clusters/$NAME"
"$BIN" lab up --name "$NAME" --kube stand-in
mapfile -t ETCD < <(sed -n '/^\[etcd\]/,/^\[/{/^[0-9]/p}' "$EZRESTORE_BASE/clusters/$NAME/hosts")
H1=${ETCD[0]}

say "write the seed article's keys through $H1"
for k in /registry/namespaces/default /registry/pods/default/net-test1 /registry/pods/default/net-test3; do
	lab_etcdctl "$H1" put "$k" "demo-value"
done

say "ezrestore backup $NAME"
"$BIN" backup "$NAME"
"$BIN" snapshots "$NAME"

say "the loss: delete pod default/net-test3"
lab_etcdctl "$H1" del /registry/pods/default/net-test3
lab_etcdctl "$H1" get --prefix /registry --keys-only

say "which backup still holds net-test3?"
"$BIN" snapshot find net-test3 --cluster "$NAME"

say "ezrestore plan $NAME --snapshot latest (changes nothing)"
"$BIN" plan "$NAME" --snapshot latest

say "ezrestore restore $NAME --snapshot latest --yes"
"$BIN" restore "$NAME" --snapshot latest --yes

say "proof: every member holds net-test3 again"
for h in "${ETCD[@]}"; do
	echo "-- $h"
	lab_etcdctl "$h" get --prefix /registry --keys-only | grep -v '^$'
	lab_etcdctl "$h" get /registry/pods/default/net-test3 --keys-only | grep -q net-test3
done
"$BIN" status "$NAME"
say "demo done: backup, loss and verified restore"
