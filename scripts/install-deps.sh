#!/usr/bin/env bash
# Installs what vhostplug's demo, tests and benchmarks need on Debian 12 (run as root).
# Idempotent: packages already present are skipped quickly.
set -euo pipefail
PKGS=(openvswitch-switch openvswitch-common openvswitch-switch-dpdk dpdk dpdk-dev
      containernetworking-plugins iproute2 python3-os-vif python3-ovsdbapp
      clang clang-format libclang-rt-14-dev procps
      # the containerd suite (test/e2e): runtime, image builds without a registry (scripts/build-image.sh)
      containerd runc umoci mmdebstrap gcc libc6-dev util-linux ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
