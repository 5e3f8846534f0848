#!/usr/bin/env bash
# System packages the test suite needs beyond Python: a real Prometheus (with promtool), a Pushgateway,
# Chromium for the browser tests (Playwright drives Debian's build; it downloads no browser), and
# docker-compose (v1), which validates docker-compose.yaml with `docker-compose config` without an engine.
# Idempotent: installs nothing when the binaries are already on PATH. CI runs it as root on Debian.
set -euo pipefail

missing=()
for binary in promtool prometheus prometheus-pushgateway chromium docker-compose; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "system-deps: promtool, prometheus, prometheus-pushgateway, chromium and docker-compose are installed"
    exit 0
fi

echo "system-deps: missing ${missing[*]}; installing the Debian packages prometheus, prometheus-pushgateway, chromium, docker-compose"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: the tests run the binaries directly; no service units, no extras.
$SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-pushgateway chromium docker-compose
# Debian starts the packaged services where systemd runs; the tests start their own on free ports.
for binary in promtool prometheus prometheus-pushgateway chromium docker-compose; do
    command -v "$binary" >/dev/null 2>&1 || { echo "system-deps: $binary still missing" >&2; exit 1; }
done
echo "system-deps: installed"
