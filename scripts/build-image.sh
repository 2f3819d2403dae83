#!/usr/bin/env bash
# build-image.sh — builds vhostplug's OCI images without any registry (as root):
#
#   vhostplug  the node daemon + CNI shim image that deploy/daemonset.yaml runs: a Debian 12
#              rootfs from the Debian archive (mmdebstrap), Node 20 (this machine's
#              /usr/bin/node: Debian 12 ships Node 18 only), and the built vhostplug
#              (dist/, production node_modules, the addon and the vhostplug-cni shim) in
#              /opt/vhostplug, with `vhostplug` on PATH. deploy/Containerfile builds the same
#              layout from a node:20-bookworm image where a registry is reachable.
#   pause      the pod infra container of the tests: test/images/pause.c, static, one layer.
#   testpmd    a pod image with dpdk-testpmd (Debian's dpdk-dev) for in-pod traffic tests.
#
# Each image is an OCI image layout packed as a tar (`ctr images import` reads it), cached
# under $VHOSTPLUG_IMAGE_CACHE (default .cache/images, gitignored) by a key over its inputs,
# so a repeated run is instant. The Debian rootfs layers are cached by their own key
# (suite, packages, mmdebstrap options); the vhostplug layer by the built files.
#
# Usage: scripts/build-image.sh [--json] IMAGE...      (IMAGE: vhostplug, pause, testpmd)
#   Prints one line per image: NAME ARCHIVE TAG SECONDS, or a JSON object with --json.
#   vhostplug needs `npm run build` first.
# Environment: VHOSTPLUG_IMAGE_CACHE, VHOSTPLUG_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${VHOSTPLUG_IMAGE_CACHE:-$ROOT/.cache/images}
MIRROR=${VHOSTPLUG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
NODE_BIN=${VHOSTPLUG_NODE_BIN:-/usr/bin/node}
# Trims docs, man pages and locales from the rootfs layers (smaller import into containerd).
DPKG_EXCLUDES=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright')
# Reproducible layer tars: fixed owner, mtime and order.
TAR_OPTS=(--owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name)

die() { echo "build-image: $*" >&2; exit 1; }
log() { echo "build-image: $*" >&2; }

usage() {
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

json=0
images=()
for a in "$@"; do
  case "$a" in
    --json) json=1 ;;
    -h | --help) usage; exit 0 ;;
    vhostplug | pause | testpmd) images+=("$a") ;;
    *) die "unknown image or option '$a' (images: vhostplug, pause, testpmd)" ;;
  esac
done
[[ ${#images[@]} -gt 0 ]] || { usage >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "needs root (mmdebstrap in root mode, image file ownership)"
for b in mmdebstrap umoci tar sha256sum gcc; do command -v "$b" >/dev/null || die "missing $b (scripts/install-deps.sh installs it)"; done
mkdir -p "$CACHE"

# key WORDS...: a short hash over strings and the contents of the files named with @path.
key() {
  local a
  for a in "$@"; do
    if [[ "$a" == @* ]]; then
      local p=${a#@}
      if [[ -d "$p" ]]; then
        (cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
      else
        sha256sum <"$p"
      fi
    else
      printf '%s\n' "$a"
    fi
  done | sha256sum | cut -c1-16
}

# rootfs NAME PACKAGES EXTRA-KEY MMDEBSTRAP-ARGS...: a Debian rootfs layer tar, cached by
# its inputs (EXTRA-KEY: what the hooks copy in, e.g. the Node binary's hash).
rootfs() {
  local name=$1 pkgs=$2 extra=$3
  shift 3
  local k
  k=$(key rootfs-v1 "$SUITE" "$MIRROR" "$pkgs" "$extra" "$(mmdebstrap --version)" "${DPKG_EXCLUDES[@]}" "$@")
  local out=$CACHE/rootfs-$name-$k.tar
  if [[ ! -f "$out" ]]; then
    log "debian rootfs '$name' ($SUITE: $pkgs) from $MIRROR"
    local tmp=$CACHE/rootfs-$name-$k.tmp$$.tar # mmdebstrap writes a tarball for a *.tar target
    # essential: Essential:yes packages + the listed ones (and their dependencies), no apt.
    mmdebstrap --quiet --mode=root --variant=essential --include="$pkgs" "${DPKG_EXCLUDES[@]}" \
      --customize-hook='rm -rf "$1"/var/cache/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
      "$@" "$SUITE" "$tmp" "$MIRROR" >&2
    mv "$tmp" "$out"
  fi
  echo "$out"
}

# oci_archive OUT TAG LAYER... -- UMOCI-CONFIG-ARGS...: an OCI layout tar with these layers.
oci_archive() {
  local out=$1 tag=$2
  shift 2
  local layers=()
  while [[ $# -gt 0 && "$1" != -- ]]; do layers+=("$1"); shift; done
  shift
  local dir
  dir=$(mktemp -d "$CACHE/oci.XXXXXX")
  umoci init --layout "$dir/layout"
  umoci new --image "$dir/layout:$tag"
  for l in "${layers[@]}"; do umoci raw add-layer --image "$dir/layout:$tag" "$l"; done
  umoci config --image "$dir/layout:$tag" --architecture amd64 --os linux --author vhostplug "$@"
  umoci gc --layout "$dir/layout"
  tar "${TAR_OPTS[@]}" -C "$dir/layout" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

emit() {
  local name=$1 archive=$2 tag=$3 secs=$4
  if ((json)); then
    printf '{"image":"%s","archive":"%s","tag":"%s","seconds":%s}\n' "$name" "$archive" "$tag" "$secs"
  else
    echo "$name $archive $tag $secs"
  fi
}

build_pause() {
  local k
  k=$(key pause-v1 @test/images/pause.c "$(gcc --version | head -1)")
  local out=$CACHE/pause-$k.oci.tar
  if [[ ! -f "$out" ]]; then
    log "pause image"
    local d
    d=$(mktemp -d "$CACHE/pause.XXXXXX")
    gcc -static -Os -s -Wall -Wextra -o "$d/pause" test/images/pause.c
    tar "${TAR_OPTS[@]}" -C "$d" -cf "$d/layer.tar" pause
    oci_archive "$out" "$k" "$d/layer.tar" -- --config.entrypoint /pause --config.user 65535:65535
    rm -rf "$d"
  fi
  echo "$out $k"
}

build_vhostplug() {
  for f in dist/cli/main.js build/Release/vhostplug.node build/Release/vhostplug-cni; do
    [[ -f "$f" ]] || die "$f missing: run npm run build first"
  done
  # The Node binary is part of the base layer: its key changes with it.
  local base
  base=$(rootfs vhostplug-base "libstdc++6,libgcc-s1,ca-certificates" "node $(key @"$NODE_BIN")" \
    --customize-hook="copy-in $NODE_BIN /usr/local/bin" \
    --customize-hook='chroot "$1" /usr/local/bin/node --version')
  local basek
  basek=$(key "$base")
  local appk
  appk=$(key app-v2 @dist @build/Release/vhostplug.node @build/Release/vhostplug-cni @package.json @package-lock.json)
  local k
  k=$(key vhostplug-v1 "$basek" "$appk")
  local out=$CACHE/vhostplug-$k.oci.tar
  if [[ ! -f "$out" ]]; then
    log "vhostplug image (base $basek, app $appk)"
    local d
    d=$(mktemp -d "$CACHE/vhostplug.XXXXXX")
    local app=$d/root/opt/vhostplug
    mkdir -p "$app/build/Release" "$d/root/usr/local/bin"
    cp package.json package-lock.json "$app/"
    cp -r dist "$app/dist"
    cp build/Release/vhostplug.node build/Release/vhostplug-cni "$app/build/Release/"
    # Production dependencies only; the addon is already built (no install scripts).
    (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    rm "$app/package-lock.json"
    chmod 0755 "$app/dist/cli/main.js" # what npm does for a "bin"
    ln -s /opt/vhostplug/dist/cli/main.js "$d/root/usr/local/bin/vhostplug"
    tar "${TAR_OPTS[@]}" -C "$d/root" -cf "$d/app.tar" opt usr
    oci_archive "$out" "$k" "$base" "$d/app.tar" -- \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --config.env NODE_ENV=production --config.workingdir /opt/vhostplug --config.cmd vhostplug --config.cmd --help
    rm -rf "$d"
  fi
  echo "$out $k"
}

build_testpmd() {
  local base
  base=$(rootfs testpmd "dpdk-dev" "")
  local k
  k=$(key testpmd-v1 "$base")
  local out=$CACHE/testpmd-$k.oci.tar
  if [[ ! -f "$out" ]]; then
    log "testpmd image"
    oci_archive "$out" "$k" "$base" -- --config.cmd sleep --config.cmd infinity
  fi
  echo "$out $k"
}

for img in "${images[@]}"; do
  t0=$EPOCHREALTIME
  result=$("build_$img")
  read -r archive tag <<<"$result"
  [[ -f "$archive" && -n "$tag" ]] || die "building $img failed"
  emit "$img" "$archive" "$tag" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
done
