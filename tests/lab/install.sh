#!/usr/bin/env bash
# Installs the traffic lab's tools with apt-get (Debian/Ubuntu), skipping what is installed.
#
#   sudo tests/lab/install.sh
#
# dnsmasq-base, not dnsmasq: the latter also installs a system service that would listen on
# the host's port 53. The lab starts its own dnsmasq inside a network namespace.
set -euo pipefail

PACKAGES=(
    iproute2        # ip netns, veth pairs, the bridge
    ethtool         # offloads off: the capture holds wire-sized packets, never 64 KB lumps
    tcpdump         # the capture
    curl            # browse
    dnsmasq-base    # dns: the resolver
    bind9-dnsutils  # dns: dig
    nmap            # nmap_syn, nmap_connect
    hydra           # bruteforce
    iodine          # dns_tunnel: iodine and iodined (net-tools comes with it)
)

if [ "$(id -u)" != 0 ]; then
    echo "tests/lab/install.sh: must run as root (it installs packages with apt-get)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "tests/lab/install.sh: apt-get not found; install these by hand: ${PACKAGES[*]}" >&2
    exit 1
fi

missing=()
for package in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    echo "tests/lab/install.sh: all lab tools are installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
echo "tests/lab/install.sh: installing ${missing[*]}"
# The package lists may be stale or absent on a fresh machine: refresh them once and retry.
if ! install; then
    apt-get update -qq
    install
fi
echo "tests/lab/install.sh: done"
