#!/usr/bin/env bash
# Installs what `make test`, `make demo` and `make bench` need on a Debian-like
# machine: the lab's host tools and an etcd on the machine itself, which the
# snapshot tests use to write real snapshots; the age CLI, the offsite bench's
# baseline.
set -euo pipefail

need_pkgs=()
check() { # command package
	command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}
check debootstrap debootstrap
check systemd-nspawn systemd-container
check etcd etcd-server
check etcdctl etcd-client
check sshd openssh-server
check ssh openssh-client
check scp openssh-client
check ip iproute2
check sha256sum coreutils
check sudo sudo
check age age # the baseline of the offsite bench

[ ${#need_pkgs[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "ezrestore: missing packages: ${need_pkgs[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ezrestore: missing packages: ${need_pkgs[*]}; this machine has no apt-get, install their equivalents by hand" >&2
	exit 1
fi
echo "ezrestore: installing ${need_pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
