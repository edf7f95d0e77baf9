#!/usr/bin/env bash
# Builds the Kubernetes tooling Caravan's local control plane needs, from the Go module
# proxy (no release downloads are reachable here): kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok, kwokctl and helm. Each lands in a versioned cache folder and
# is skipped when already built. Compiler output goes to a log file; the terminal gets one
# progress line per step and a heartbeat while a long step runs. The kubelet is built here
# too: the local cluster's real node runs it (docs/local-cluster.md).
#
# Usage: hack/build-binaries.sh [component...]   (components: etcd k8s kwok helm; default all)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$here/versions.env"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
log_dir="$CARAVAN_CACHE/logs"
work_root="$CARAVAN_CACHE/build"
mkdir -p "$log_dir" "$work_root"
started=$SECONDS
# Two builds at once (two terminals, a test run and `make cluster`) would race on the
# same folders: the second waits for the first, then finds everything cached.
exec 9>"$CARAVAN_CACHE/.build.lock"
if ! flock -n 9; then
  printf '[build] another build is running; waiting for it\n'
  flock 9
fi

say() { printf '[build %4ds] %s\n' "$((SECONDS - started))" "$*"; }

# shellcheck source=hack/lib.sh
source "$here/lib.sh"

have_all() { local dir=$1; shift; local b; for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done; }

build_etcd() {
  local dir=$ETCD_BIN_DIR logf="$log_dir/etcd-$ETCD_VERSION.log"
  if have_all "$dir" etcd; then say "etcd $ETCD_VERSION: cached in $dir"; return; fi
  say "etcd $ETCD_VERSION: building (log: $logf)"
  local work="$work_root/etcd-$ETCD_VERSION"
  rm -rf "$work" && mkdir -p "$work" && cd "$work"
  go mod init caravan.local/etcd-bin >>"$logf" 2>&1
  # etcd's server module has replace directives, so `go install` refuses it; a helper
  # module that requires it builds the main package at the module root.
  run_logged "$logf" "fetching etcd modules" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  mkdir -p "$dir.tmp"
  run_logged "$logf" "compiling etcd" go build -trimpath -ldflags "-s -w" -o "$dir.tmp/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  say "etcd $ETCD_VERSION: done"
}

build_k8s() {
  local dir=$K8S_BIN_DIR logf="$log_dir/k8s-$K8S_VERSION.log"
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
  if have_all "$dir" "${bins[@]}"; then say "kubernetes $K8S_VERSION: cached in $dir"; return; fi
  say "kubernetes $K8S_VERSION: building ${bins[*]} (log: $logf)"
  local work="$work_root/k8s-$K8S_VERSION"
  rm -rf "$work" && mkdir -p "$work" && cd "$work"
  go mod init caravan.local/k8s-bins >>"$logf" 2>&1
  # k8s.io/kubernetes requires its staging modules at v0.0.0 with local replaces that only
  # work inside its own repository; point each at the matching published v0.X.Y tag.
  local staging_version="v0.${K8S_VERSION#v1.}"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [[ -f "$gomod" ]] || { say "could not download k8s.io/kubernetes@$K8S_VERSION"; return 1; }
  local m replaces=()
  while read -r m; do
    replaces+=("-replace=$m=$m@$staging_version")
  done < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u)
  say "  replacing ${#replaces[@]} staging modules with $staging_version"
  go mod edit "-require=k8s.io/kubernetes@$K8S_VERSION" "${replaces[@]}"
  local pkgs=()
  for m in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$m"); done
  run_logged "$logf" "fetching kubernetes modules" go get "${pkgs[@]}"
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$dir.tmp"
  for m in "${bins[@]}"; do
    say "  compiling $m"
    run_logged "$logf" "compiling $m" go build -trimpath -ldflags "$ld" -o "$dir.tmp/$m" "k8s.io/kubernetes/cmd/$m"
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  say "kubernetes $K8S_VERSION: done ($("$dir/kube-apiserver" --version))"
}

build_kwok() {
  local dir=$KWOK_BIN_DIR logf="$log_dir/kwok-$KWOK_VERSION.log"
  if have_all "$dir" kwok kwokctl; then say "kwok $KWOK_VERSION: cached in $dir"; return; fi
  say "kwok $KWOK_VERSION: building kwok, kwokctl (log: $logf)"
  mkdir -p "$dir.tmp"
  run_logged "$logf" "compiling kwok" env GOBIN="$dir.tmp" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  say "kwok $KWOK_VERSION: done"
}

build_helm() {
  local dir=$HELM_BIN_DIR logf="$log_dir/helm-$HELM_VERSION.log"
  if have_all "$dir" helm; then say "helm $HELM_VERSION: cached in $dir"; return; fi
  say "helm $HELM_VERSION: building (log: $logf)"
  mkdir -p "$dir.tmp"
  # Stamp the Kubernetes version Helm assumes without a cluster (`helm template`, lint):
  # built from source it would default to v1.20 and refuse the chart's kubeVersion.
  local k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
  local cu=helm.sh/helm/v3/pkg/chartutil
  run_logged "$logf" "compiling helm" env GOBIN="$dir.tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X $cu.k8sVersionMajor=1 -X $cu.k8sVersionMinor=$k8s_minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  say "helm $HELM_VERSION: done"
}

components=("$@")
(( ${#components[@]} )) || components=(etcd k8s kwok helm)
for c in "${components[@]}"; do
  case $c in
    etcd|k8s|kwok|helm) "build_$c" ;;
    *) echo "unknown component: $c (expected etcd, k8s, kwok, helm)" >&2; exit 2 ;;
  esac
done
say "all requested binaries ready under $CARAVAN_CACHE"
