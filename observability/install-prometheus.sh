#!/usr/bin/env bash
# Make `prometheus` and `promtool` available for the observability tests.
#
# Idempotent: does nothing when both are already on PATH. Otherwise, as root on
# a Debian/Ubuntu machine, installs Debian's `prometheus` package with apt-get
# (nothing else is downloaded); anywhere else it prints what to do.
# The tests that need the binaries skip, saying why, when they are missing.
# Under systemd the package also enables and starts its own service on :9090
# (`systemctl disable --now prometheus` if you only want the binaries).
#
# Usage: observability/install-prometheus.sh [--require]
#   --require  exit 1 (instead of 0) when the binaries are still missing
set -euo pipefail

require=0
for argument in "$@"; do
    case "$argument" in
        --require) require=1 ;;
        -h | --help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "install-prometheus.sh: unknown argument '$argument' (try --help)" >&2
            exit 2
            ;;
    esac
done

have_both() {
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

report() {
    echo "prometheus: $(command -v prometheus) ($(prometheus --version 2>&1 | head -n 1))"
    echo "promtool:   $(command -v promtool)"
}

if have_both; then
    report
    exit 0
fi

missing() {
    echo "install-prometheus.sh: $1" >&2
    echo "  To run the Prometheus tests, install Prometheus (2.x or newer) so that" >&2
    echo "  'prometheus' and 'promtool' are on PATH, for example:" >&2
    echo "    Debian/Ubuntu: sudo apt-get install --no-install-recommends prometheus" >&2
    echo "    macOS:         brew install prometheus" >&2
    echo "  Until then the tests that need them are skipped." >&2
    if [ "$require" -eq 1 ]; then
        exit 1
    fi
    exit 0
}

if [ "$(id -u)" -ne 0 ]; then
    missing "prometheus/promtool not found and not running as root, so not installing them."
fi
if ! command -v apt-get >/dev/null 2>&1; then
    missing "prometheus/promtool not found and this machine has no apt-get."
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show prometheus >/dev/null 2>&1; then
    echo "install-prometheus.sh: refreshing the apt package lists"
    apt-get update -qq
fi
echo "install-prometheus.sh: apt-get install prometheus (Debian's package)"
# No recommends: the node exporter and friends are not needed for the tests.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

if ! have_both; then
    missing "apt-get installed 'prometheus' but prometheus/promtool are still not on PATH."
fi
report
