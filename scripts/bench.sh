#!/usr/bin/env bash
# make bench: measured figures, each beside its target, in one table.
#   restorebench: on a lab of its own (3 etcd/master hosts, 2 nodes, etcd 3.6):
#     3 restores of a 16 MiB snapshot, each the whole `ezrestore restore`
#     command: stop etcd, wall clock minus the floor (transfer + restore tool +
#     etcd start-to-healthy, from the run record); 3 more with the push after
#     the stops instead of beside them (-seq-runs), for the stop on its own
#     and what the overlap buys on these two cores; the snapshot fan-out to the
#     etcd hosts stage by stage (the bastion's compressor alone, the host's
#     inflate+write+hash alone, the stream and the uncompressed push on the
#     unshaped link, with bastion and machine CPU), then over a link shaped to
#     1 Gbit/s (compressed stream against three parallel scp); pass -big-mib
#     2048 -fanout-mib 2048 for the 2 GiB figures (generating a 2 GiB snapshot
#     takes many minutes, once). -lab NAME -lab-base DIR reuses a lab that is
#     up, -runs 0 skips the small restores, -cpuprofile FILE profiles the
#     fan-out part.
#   snapshot bench: `snapshot find` across 10 x 100 MB snapshots and the peak
#     memory of `snapshot inspect` on a 1 GiB snapshot.
# Generated snapshots (Kubernetes-shaped objects) are cached in
# /var/cache/ezrestore/bench. Nothing here asserts a time; `make test` runs
# no benchmark. The machine is shared: read the load average in the table.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/restorebench -bin bin/ezrestore "$@"
go run ./bench/snapshotbench -bin bin/ezrestore

# --- offsite (issue 11) ------------------------------------------------------
# A 1 GiB snapshot-sized file encrypted with age and uploaded (multipart, read
# back and compared) to versitygw on 127.0.0.1, beside `age` + `cp` of the same
# file; the uploader's peak RSS (targets: within 1.5x, under 150 MB); and the
# way back (download + decrypt) beside `age -d`.
go run ./bench/offsitebench

# --- recover (issue 20) ------------------------------------------------------
# `ezrestore recover --namespace` of a deleted namespace of 1,000 ConfigMaps on
# a lab with the real control plane: the whole command (target < 10 s).
go run ./bench/recoverbench -bin bin/ezrestore

# --- objects (issue 20) -------------------------------------------------------
# `snapshot get` of one pod in a ~2 GiB snapshot of protobuf pods (warm; target
# < 1 s); `diff S1 S2` of two such snapshots, offline, with its peak RSS
# (targets for diff against a live cluster of that size: < 15 s, < 400 MB);
# the live side's listing on the etcd holding the data (local, without SSH).
# Generated once (many minutes), cached in /var/cache/ezrestore/bench/objects.
go run ./bench/objectsbench -bin bin/ezrestore
