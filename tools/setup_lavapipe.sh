#!/usr/bin/env bash
# Installs lavapipe (Mesa's CPU Vulkan driver) and the Vulkan loader on Debian 12, preferring Mesa 25 from
# bookworm-backports (about twice as fast as Debian 12's Mesa 22; stock Mesa is the fallback). Needs root.
# Does nothing when Mesa 25 and the loader are already there. Used by the README's main command and .ci/run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
mesa_version() { dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
if [[ "$(mesa_version)" == 25.* ]] && ldconfig -p | grep -q libvulkan.so.1; then
    echo "lavapipe: Mesa $(mesa_version)"
    exit 0
fi
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ] && ! grep -q bookworm-backports "$src"; then
    sed -i 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' "$src"
fi
apt-get update -q
apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1 \
    || apt-get install -y -q mesa-vulkan-drivers libvulkan1
echo "lavapipe: Mesa $(mesa_version)"
