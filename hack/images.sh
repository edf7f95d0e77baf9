#!/usr/bin/env bash
# Builds the local images of the real node without Docker or a registry, and imports them
# into the node's containerd:
#   localhost/caravan-python:3.11-bookworm  a Debian base with Python (mmdebstrap), the
#                                           build argument PYTHON_IMAGE of both Dockerfiles
#   localhost/caravan-pause:1               the sandbox ("pause") image: busybox-static
#   caravan:0.1.0                           Caravan, from the project's own Dockerfile
#   caravan-example-task:0.1.0              the example task program (examples/task)
# buildah builds the Dockerfiles as `docker build` would. Each image is keyed by a hash of
# its inputs and cached as an archive; nothing is rebuilt unless its inputs changed.
#
# Usage: hack/images.sh build            build what is missing (progress lines, logs in the cache)
#        hack/images.sh import SOCKET    build, then import every image into containerd at SOCKET
#        hack/images.sh list             the image references and their archives
#        hack/images.sh import-caravan DIR SOCKET
#                                        Caravan's image from the sources in DIR (e.g. a git
#                                        worktree of an earlier commit), tagged
#                                        caravan:src-<digest of those sources>, imported;
#                                        prints that reference last. The upgrade test runs two
#                                        releases side by side this way, never touching the
#                                        caravan:0.1.0 the other tests use.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=hack/versions.env
source "$here/versions.env"

images_dir="$CARAVAN_CACHE/images"
log_dir="$CARAVAN_CACHE/logs"
mkdir -p "$images_dir" "$log_dir"
started=$SECONDS
say() { printf '[images %4ds] %s\n' "$((SECONDS - started))" "$*"; }

BASE_REF=localhost/caravan-python:3.11-bookworm
PAUSE_REF=localhost/caravan-pause:1
CARAVAN_REF=caravan:0.1.0
TASK_REF=caravan-example-task:0.1.0
BASE_PACKAGES=python3,python3-venv,python-is-python3,passwd
SUITE=bookworm

# buildah keeps its own store in the cache; vfs works on any file system here.
buildah_() {
  buildah --root "$images_dir/buildah" --runroot /run/caravan-buildah --storage-driver vfs "$@"
}

hash_of() {  # hash_of TEXT FILE...: a short digest of a text and the files' contents
  local text=$1; shift
  { printf '%s\n' "$text"; for f in "$@"; do printf '%s\n' "$f"; cat "$f"; done; } | sha256sum | cut -c1-16
}

project_files() {  # [DIR] the build context of the Caravan image: what the Dockerfile copies
  (cd "${1:-$repo}" && find Dockerfile pyproject.toml README.md caravan -type f \
     -not -path '*/__pycache__/*' -not -name '*.pyc' | LC_ALL=C sort)
}

# shellcheck source=hack/lib.sh
source "$here/lib.sh"
HEARTBEAT_SECONDS=30

base_key() { hash_of "$SUITE $BASE_PACKAGES $(dpkg-query -W -f='${Version}' mmdebstrap)"; }

build_base() {
  local key; key=$(base_key)
  local archive="$images_dir/python-base-$key.tar" logf="$log_dir/image-python-base.log"
  if [[ -f $archive ]] && buildah_ inspect --type image "$BASE_REF" >/dev/null 2>&1; then
    say "python base: cached ($archive)"; return
  fi
  if [[ ! -f $archive ]]; then
    say "python base: mmdebstrap $SUITE with $BASE_PACKAGES (log: $logf)"
    run_logged "$logf" "building the Debian root file system" \
      mmdebstrap --variant=minbase --format=tar --include="$BASE_PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        "$SUITE" "$archive.tmp"
    mv "$archive.tmp" "$archive"
  fi
  local ctr
  ctr=$(buildah_ from scratch)
  run_logged "$logf" "committing the base image" buildah_ add "$ctr" "$archive" /
  buildah_ config --cmd python3 --env LANG=C.UTF-8 "$ctr" >>"$logf" 2>&1
  buildah_ commit --rm "$ctr" "$BASE_REF" >>"$logf" 2>&1
  say "python base: built $BASE_REF"
}

build_pause() {
  local key; key=$(hash_of "pause $(dpkg-query -W -f='${Version}' busybox-static)")
  local archive="$images_dir/pause-$key.tar" logf="$log_dir/image-pause.log"
  if [[ -f $archive ]]; then say "pause: cached"; return; fi
  say "pause: busybox-static"
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"; ln -s busybox "$root/bin/sleep"
  local ctr; ctr=$(buildah_ from scratch)
  buildah_ copy "$ctr" "$root" / >>"$logf" 2>&1
  # The sandbox only holds the pod's namespaces: sleep forever (killed by the runtime).
  buildah_ config --entrypoint '["/bin/sleep", "infinity"]' "$ctr" >>"$logf" 2>&1
  buildah_ commit --rm "$ctr" "$PAUSE_REF" >>"$logf" 2>&1
  rm -rf "$root"
  buildah_ push "$PAUSE_REF" "docker-archive:$archive.tmp:$PAUSE_REF" >>"$logf" 2>&1
  mv "$archive.tmp" "$archive"
}

# build_dockerfile NAME REF CONTEXT KEY: `docker build` of CONTEXT/Dockerfile, by buildah.
build_dockerfile() {
  local name=$1 ref=$2 context=$3 key=$4
  local archive="$images_dir/$name-$key.tar" logf="$log_dir/image-$name.log"
  if [[ -f $archive ]]; then say "$name: cached ($ref)"; return; fi
  say "$name: building $ref from $context/Dockerfile (log: $logf)"
  # pip inside the build reaches PyPI through this machine's CA bundle and pip settings:
  # mounted for the build only, never part of the image.
  local mounts=()
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  [[ -f /etc/pip.conf ]] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
  run_logged "$logf" "building $name" buildah_ bud --isolation chroot --pull=never \
    --layers=false "${mounts[@]}" --build-arg "PYTHON_IMAGE=$BASE_REF" -t "$ref" \
    -f "$context/Dockerfile" "$context"
  buildah_ push "$ref" "docker-archive:$archive.tmp:$ref" >>"$logf" 2>&1
  mv "$archive.tmp" "$archive"
  say "$name: built ($(du -h "$archive" | cut -f1))"
}

caravan_key() {  # [DIR]
  local dir=${1:-$repo} files
  mapfile -t files < <(project_files "$dir")
  (cd "$dir" && hash_of "caravan $(base_key)" "${files[@]}")
}
task_key() {
  local files; mapfile -t files < <(cd "$repo" && find examples/task -type f | LC_ALL=C sort)
  (cd "$repo" && hash_of "task $(base_key)" "${files[@]}")
}

archives() {  # REF ARCHIVE lines of every image, as built for the current inputs
  printf '%s %s\n' "$PAUSE_REF" "$(ls -t "$images_dir"/pause-*.tar | head -1)"
  printf '%s %s\n' "$CARAVAN_REF" "$images_dir/caravan-$(caravan_key).tar"
  printf '%s %s\n' "$TASK_REF" "$images_dir/example-task-$(task_key).tar"
}

build() {
  exec 7>"$images_dir/.lock"
  flock 7
  build_pause
  local ck tk
  ck=$(caravan_key); tk=$(task_key)
  if [[ ! -f "$images_dir/caravan-$ck.tar" || ! -f "$images_dir/example-task-$tk.tar" ]]; then
    build_base
  fi
  build_dockerfile caravan "$CARAVAN_REF" "$repo" "$ck"
  build_dockerfile example-task "$TASK_REF" "$repo/examples/task" "$tk"
  # Old archives of other inputs are dead weight.
  find "$images_dir" -maxdepth 1 -name 'caravan-*.tar' -not -name "caravan-$ck.tar" -delete
  find "$images_dir" -maxdepth 1 -name 'example-task-*.tar' -not -name "example-task-$tk.tar" -delete
}

import_archive() {  # import_archive SOCKET REF ARCHIVE (skipped when already there)
  local socket=$1 ref=$2 archive=$3
  local ctr_=(ctr --address "$socket" -n k8s.io) full=$ref base
  [[ $ref == */* ]] || full="docker.io/library/$ref"
  base=$(basename "$archive")
  # Each imported image is labelled with the archive it came from: same label, same image.
  if [[ -n $("${ctr_[@]}" images ls -q "name==$full,labels.\"caravan.dev/archive\"==$base" 2>/dev/null) ]]; then
    return
  fi
  "${ctr_[@]}" images import "$archive" >/dev/null
  "${ctr_[@]}" images label "$full" "caravan.dev/archive=$base" >/dev/null
  say "imported $full"
}

import() {  # import SOCKET: every image into containerd's k8s.io namespace (skips present ones)
  local socket=$1 ref archive
  build
  while read -r ref archive; do
    import_archive "$socket" "$ref" "$archive"
  done < <(archives)
}

import_caravan() {  # import_caravan DIR SOCKET
  local dir socket=$2
  dir=$(cd "$1" && pwd)
  [[ -f $dir/Dockerfile && -d $dir/caravan ]] || { echo "$dir holds no Caravan sources" >&2; exit 2; }
  exec 7>"$images_dir/.lock"
  flock 7
  local key; key=$(caravan_key "$dir")
  local ref="caravan:src-$key" archive="$images_dir/src-caravan-$key.tar"
  local logf="$log_dir/image-src-caravan.log"
  if [[ ! -f $archive ]]; then
    if [[ -f $images_dir/caravan-$key.tar ]]; then
      # The same sources were built as caravan:0.1.0: the same image under another name.
      say "$ref: retagging caravan-$key.tar"
      buildah_ pull "docker-archive:$images_dir/caravan-$key.tar" >>"$logf" 2>&1
      buildah_ tag "$CARAVAN_REF" "$ref" >>"$logf" 2>&1
      buildah_ push "$ref" "docker-archive:$archive.tmp:$ref" >>"$logf" 2>&1
      buildah_ rmi "$ref" >>"$logf" 2>&1
      mv "$archive.tmp" "$archive"
    else
      build_base
      build_dockerfile src-caravan "$ref" "$dir" "$key"
    fi
  fi
  # A few releases are kept (an upgrade needs two); older ones are dead weight.
  find "$images_dir" -maxdepth 1 -name 'src-caravan-*.tar' -printf '%T@ %p\n' | sort -rn \
    | tail -n +5 | cut -d' ' -f2- | xargs -r rm -f
  flock -u 7
  import_archive "$socket" "$ref" "$archive"
  echo "$ref"
}

case "${1:-}" in
  build) build ;;
  import) import "${2:?usage: $0 import SOCKET}" ;;
  list) archives ;;
  import-caravan) import_caravan "${2:?usage: $0 import-caravan DIR SOCKET}" "${3:?usage: $0 import-caravan DIR SOCKET}" ;;
  *) echo "usage: $0 build|import SOCKET|list|import-caravan DIR SOCKET" >&2; exit 2 ;;
esac
