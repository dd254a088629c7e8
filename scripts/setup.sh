#!/usr/bin/env bash
# Install everything labcheck and its tests need on a fresh machine (run as root): the container
# tools for the offline lab world from the distribution (Debian/Ubuntu with apt, Fedora/RHEL with
# dnf), then labcheck itself in .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: run as root (it installs the distribution's packages)" >&2
    exit 1
fi

python=python3
if command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    packages=(
        docker-registry skopeo podman docker.io openssh-server busybox-static runc crun uidmap
        squashfs-tools fakeroot  # sif: images are unpacked as skopeo does it
        python3 python3-venv python3-pip ca-certificates iproute2 procps util-linux
        chromium chromium-driver  # the class dashboard's browser test
    )
    installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
    install() { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
elif command -v dnf >/dev/null; then
    # Fedora's names. On RHEL, busybox, docker-distribution and chromium come from EPEL and Docker from
    # Docker's own repository (docker-ce instead of moby-engine); dnf names whatever it cannot find.
    packages=(
        docker-distribution skopeo podman moby-engine openssh-server busybox runc crun shadow-utils
        squashfs-tools fakeroot  # sif: images are unpacked as skopeo does it
        python3 python3-pip ca-certificates iproute procps-ng util-linux
        chromium chromedriver  # the class dashboard's browser test
    )
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        packages+=(python3.11)  # RHEL 8 and 9: python3 is 3.6 or 3.9
        python=python3.11
    fi
    installed() { rpm -q "$1" >/dev/null 2>&1; }
    install() { dnf install -y -q "$@"; }
else
    echo "scripts/setup.sh: neither apt-get nor dnf found; install the lab world's tools by hand (README)" >&2
    exit 1
fi
missing=()
for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "scripts/setup.sh: installing ${missing[*]}" >&2
    install "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# An editable install leaves labcheck's own modules uncompiled, and with PYTHONDONTWRITEBYTECODE set
# (as on some CI images) every run would compile them again: about 0.3 s of each labcheck start.
.venv/bin/python -m compileall -q labcheck
echo "scripts/setup.sh: ready (.venv/bin/labcheck, .venv/bin/pytest)" >&2
