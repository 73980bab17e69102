#!/usr/bin/env bash
# Installs what `npm run bench` drives besides berth: the classic stack it is compared with (nginx in front of
# CNCF Distribution 2.8 with a redis blob-descriptor cache), skopeo, wrk, curl (blob GET client), GNU time and
# htpasswd (Debian packages).
# Idempotent: does nothing when every binary is already there. Needs root (or sudo) only when it installs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(nginx docker-registry redis-server skopeo wrk curl time apache2-utils ca-certificates)
BINARIES=(nginx docker-registry redis-server skopeo wrk curl htpasswd)

missing=()
for b in "${BINARIES[@]}"; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing+=("$b")
done
# GNU time (bench/get-probe.ts); `command -v time` would find bash's keyword instead.
[ -x /usr/bin/time ] || missing+=("time")
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench-deps: all present (${BINARIES[*]})"
  exit 0
fi

echo "bench-deps: installing ${PACKAGES[*]} (missing: ${missing[*]})"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "bench-deps: need root or sudo to apt-get install" >&2; exit 1; }
  SUDO=(sudo)
fi
"${SUDO[@]}" apt-get update
# Installing the nginx package starts its system service on Debian; the benchmark runs its own nginx
# (non-daemon, own prefix), so a system instance is not needed: policy-rc.d stops services from starting
# during the install where we can set it (a fresh CI machine), and nothing is left listening on :80.
POLICY=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$POLICY" ] && [ "$(id -u)" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > "$POLICY"; chmod +x "$POLICY"; made_policy=1
fi
trap 'if [ "$made_policy" = 1 ]; then rm -f "$POLICY"; fi' EXIT
"${SUDO[@]}" apt-get install -y --no-install-recommends "${PACKAGES[@]}"
for b in "${BINARIES[@]}"; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { echo "bench-deps: $b still missing" >&2; exit 1; }
done
echo "bench-deps: ok"
