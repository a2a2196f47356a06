#!/usr/bin/env bash
# Unpacks Debian's syslog-ng into .cache/syslog-ng for the interop tests. It is not installed:
# syslog-ng and rsyslog conflict in apt, and the tests run both. Its libraries are installed
# (.ci/run lists them); only the syslog-ng packages themselves are unpacked. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
root=.cache/syslog-ng
packages=(syslog-ng-core syslog-ng-mod-http syslog-ng-scl)
if [ -x "$root/usr/sbin/syslog-ng" ] && [ -f "$root/.packages" ] && [ "$(cat "$root/.packages")" = "${packages[*]}" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt's download sandbox user cannot write to a root-owned temp dir: let it.
chmod 0777 "$work"
# A machine whose package lists were never fetched has nothing to download from yet.
(cd "$work" && apt-get download -qq "${packages[@]}") || (apt-get update -qq && cd "$work" && apt-get download -qq "${packages[@]}")
rm -rf "$root"
mkdir -p "$root"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$root"; done
echo "${packages[*]}" > "$root/.packages"
# Runs, or says which library is missing.
LD_LIBRARY_PATH="$root/usr/lib/syslog-ng:$root/usr/lib" "$root/usr/sbin/syslog-ng" --version >/dev/null
