#!/usr/bin/env bash
# make bench: measured figures, each beside the alternative it is compared with.
#   restorebench: restore on the lab with 16 MiB and 512 MiB snapshots, per-step
#     times, orchestration overhead, health detection delay, and the snapshot
#     fan-out to all etcd hosts beside three parallel OpenSSH scp.
#   snapshot bench: `snapshot find` across 10 x 100 MB snapshots and the peak
#     memory of `snapshot inspect` on a 1 GiB snapshot.
# Generated snapshots are cached in /var/cache/ezrestore/bench. The machine is
# shared and noisy: read the ratios, not single timings.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./internal/restorebench "$@"
go run ./snapshot/internal/bench -bin bin/ezrestore

# --- offsite (issue 11) ------------------------------------------------------
# A 1 GiB snapshot-sized file encrypted with age and uploaded (multipart, read
# back and compared) to versitygw on 127.0.0.1, beside `age` + `cp` of the same
# file; the uploader's peak RSS (targets: within 1.5x, under 150 MB); and the
# way back (download + decrypt) beside `age -d`.
go run ./offsite/internal/bench
