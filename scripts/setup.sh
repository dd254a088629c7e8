#!/usr/bin/env bash
# Install everything labcheck and its tests need on a fresh Debian 12 machine (run as root):
# Debian's container tools for the offline lab world, then labcheck itself in .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
packages=(
    docker-registry skopeo podman docker.io openssh-server apache2-utils busybox-static runc uidmap
    python3 python3-venv python3-pip ca-certificates iproute2 procps
    chromium chromium-driver  # the class dashboard's browser test
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "scripts/setup.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# An editable install leaves labcheck's own modules uncompiled, and with PYTHONDONTWRITEBYTECODE set
# (as on some CI images) every run would compile them again: about 0.3 s of each labcheck start.
.venv/bin/python -m compileall -q labcheck
echo "scripts/setup.sh: ready (.venv/bin/labcheck, .venv/bin/pytest)" >&2
