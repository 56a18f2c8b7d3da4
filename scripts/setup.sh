#!/usr/bin/env bash
# Idempotent setup: npm dependencies, a software WebGPU driver where no GPU driver works, the build.
# Called by `npm test`, `npm run demo`, `npm run bench` and .ci/run; safe to run any number of times.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { echo "[setup] $*" >&2; }

# 1. npm dependencies, only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund
fi

# 2. Vulkan lavapipe from Mesa 25 into .transfuse/lavapipe (Linux x86-64 with apt only). Debian
#    bookworm's own lavapipe (Mesa 22) is rejected by Dawn, so the backports build is unpacked into
#    a private folder; nothing system-wide changes except the Vulkan loader (libvulkan1).
#    The core library finds .transfuse/lavapipe/lvp_icd.json by itself; OpenGL (llvmpipe, in
#    WebGPU compatibility mode) is the fallback and needs nothing installed.
lvp="$root/.transfuse/lavapipe"
install_lavapipe() {
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || { log "no apt: skipping lavapipe (OpenGL fallback stays)"; return 0; }
  [ "$(uname -m)" = x86_64 ] || { log "not x86-64: skipping lavapipe"; return 0; }
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    log "installing libvulkan1 (the Vulkan loader)"
    $sudo apt-get update -qq || true
    $sudo apt-get install -y -qq libvulkan1 >/dev/null || { log "could not install libvulkan1; OpenGL fallback stays"; return 0; }
  fi
  local src; src=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  local uri=""
  [ -n "$src" ] && uri=$(sed -n 's/^URIs: *//p' "$src" | head -n1)
  [ -n "$uri" ] || uri=$(sed -n 's/^deb \([^ ]*\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)
  [ -n "$uri" ] || { log "no apt mirror found: skipping lavapipe"; return 0; }
  local codename; codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  local tmp="$root/.transfuse/lavapipe.tmp"
  rm -rf "$tmp"; mkdir -p "$tmp/lists/partial" "$tmp/debs" "$tmp/root"
  echo "deb $uri $codename-backports main" > "$tmp/sources.list"
  local o=(-o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=- -o Dir::State::Lists="$tmp/lists" -o Debug::NoLocking=1)
  log "downloading Mesa's lavapipe from $codename-backports"
  apt-get "${o[@]}" update -qq
  (cd "$tmp/debs" && apt-get "${o[@]}" download mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 >/dev/null)
  for f in "$tmp"/debs/*.deb; do dpkg -x "$f" "$tmp/root"; done
  local lib="$lvp/root/usr/lib/x86_64-linux-gnu"
  sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" \
    "$tmp/root/usr/share/vulkan/icd.d/lvp_icd.json" > "$tmp/lvp_icd.json"
  rm -rf "$tmp/lists" "$tmp/debs" "$lvp"
  mv "$tmp" "$lvp"
  log "lavapipe installed: $lvp/lvp_icd.json"
}
if [ "$(uname -s)" = Linux ] && [ ! -f "$lvp/lvp_icd.json" ] && [ "${TRANSFUSE_SKIP_LAVAPIPE:-}" != 1 ]; then
  install_lavapipe || log "lavapipe install failed; the OpenGL fallback stays"
fi

# 3. Build (incremental: tsc -b skips what is up to date).
npx tsc -b
