#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the test tiers need, when absent:
# the real node's runtime (containerd, runc, iptables), the image tools (buildah, mmdebstrap,
# busybox-static) and the browser of the UI tests (chromium). Only missing
# packages are installed; without root (or without apt) it names what is missing and
# exits 3, so callers can fall back (e.g. a kwok-only cluster).
#
# Usage: hack/install-debian-packages.sh [group...]   (groups: node images browser; default all)
set -euo pipefail

declare -A GROUPS_=(
  [node]="containerd runc iptables"
  [images]="buildah mmdebstrap busybox-static"
  [browser]="chromium"
)

groups=("$@")
(( ${#groups[@]} )) || groups=(node images browser)
wanted=()
for g in "${groups[@]}"; do
  [[ -n "${GROUPS_[$g]:-}" ]] || { echo "unknown group: $g (expected node, images, browser)" >&2; exit 2; }
  read -ra pkgs <<<"${GROUPS_[$g]}"
  wanted+=("${pkgs[@]}")
done

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
(( ${#missing[@]} )) || exit 0

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "[packages] missing Debian packages: ${missing[*]} (need root and apt-get to install them)" >&2
  exit 3
fi
log="${CARAVAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caravan}/logs/apt.log"
mkdir -p "$(dirname "$log")"
echo "[packages] installing ${missing[*]} (log: $log)"
# A lock so two callers (a test session and `make cluster`) do not race on dpkg.
exec 8>/tmp/caravan-apt.lock
flock 8
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get install -y --no-install-recommends "${missing[@]}" || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }; } >>"$log" 2>&1; then
  echo "[packages] apt-get failed; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
# containerd's package starts a system service; the local cluster runs its own instance.
if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
  systemctl stop containerd >/dev/null 2>&1 || true
fi
echo "[packages] done"
