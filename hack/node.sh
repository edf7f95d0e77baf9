#!/usr/bin/env bash
# The local cluster's real node: containerd + runc (Debian) and a kubelet built at the
# pinned Kubernetes version, registered as node "127.0.0.1" beside kwok's fake nodes.
# Pods land here unless they ask for the fake nodes (label type=kwok, toleration
# kwok.x-k8s.io/node): their processes really run, from images built locally
# (hack/images.sh), with no network beyond themselves (hack/node/cni/caravan-loopback).
#
#   hack/node.sh up CLUSTER_DIR    start (or reuse) the node of the kwokctl cluster there
#   hack/node.sh down              stop it and undo every side effect (processes, mounts,
#                                  routes, iptables chains, sysctls, cgroups, files)
#   hack/node.sh check             exit 0 when this machine can run a real node, else print
#                                  why not in one line and exit 3
#   hack/node.sh status            exit 0 when the node's kubelet runs
#   hack/node.sh socket            print the path of the node's containerd socket
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=hack/versions.env
source "$here/versions.env"

NODE_NAME=127.0.0.1
# TEST-NET-2: documentation addresses, never routed; the pods' "IPs" (on their own lo).
POD_SUBNET=198.51.100.0/24
state="${CARAVAN_NODE_DIR:-$repo/.local/node}"
# Each checkout's node has its own runtime folder and cgroup root, named after its state
# folder, so two checkouts on one machine never stop or share each other's node.
node_id=$(printf '%s' "$state" | sha256sum | cut -c1-8)
CGROUP_ROOT=caravan-node-$node_id
# Sockets and runtime state: short paths (unix socket length) on a tmpfs.
run=/run/caravan-node-$node_id
sock="$run/containerd.sock"
started=$SECONDS
say() { printf '[node %4ds] %s\n' "$((SECONDS - started))" "$*"; }

kubectl_() { "$repo/.venv/bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

why_not() {  # prints why this machine cannot run the real node; nothing when it can
  [[ $(uname -s) == Linux ]] || { echo "not Linux ($(uname -s))"; return; }
  [[ $(id -u) -eq 0 ]] || { echo "not root (containerd, cgroups and mounts need root)"; return; }
  [[ -d /sys/fs/cgroup ]] || { echo "no cgroup file system at /sys/fs/cgroup"; return; }
  [[ -x "$K8S_BIN_DIR/kubelet" ]] || { echo "no kubelet in $K8S_BIN_DIR (hack/build-binaries.sh)"; return; }
  local p
  for p in containerd runc ctr iptables nsenter buildah mmdebstrap; do
    command -v "$p" >/dev/null || { echo "$p is missing (hack/install-debian-packages.sh)"; return; }
  done
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cgroup_controllers() {  # the v1 hierarchies (and the unified one, if mounted alone)
  local d
  for d in /sys/fs/cgroup/*/; do
    d=${d%/}
    [[ -f $d/cgroup.procs ]] && echo "$d"
  done
}

record_before() {  # what the kubelet and containerd change, as it was, to restore on down
  [[ -f $state/before.env ]] && return
  {
    for s in vm.overcommit_memory kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
      printf 'sysctl %s %s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo -)"
    done
    for t in filter nat mangle; do
      iptables -t "$t" -S 2>/dev/null | awk -v t="$t" '$1 == "-N" {print "chain4", t, $2}'
      ip6tables -t "$t" -S 2>/dev/null | awk -v t="$t" '$1 == "-N" {print "chain6", t, $2}'
    done
    for f in /var/log/containers /var/lib/kubelet /run/netns /etc/cni; do
      if [[ -e $f ]]; then printf 'existed %s\n' "$f"; fi
    done
    for n in /run/netns/*; do
      if [[ -e $n ]]; then printf 'netns %s\n' "$n"; fi
    done
  } >"$state/before.env"
}

up() {
  local cluster_dir reason
  cluster_dir=$(realpath "$1")
  KUBECONFIG_PATH="$cluster_dir/kubeconfig.yaml"
  reason=$(why_not)
  if [[ -n $reason ]]; then
    say "no real node: $reason; the cluster has kwok's fake nodes only"
    return 3
  fi
  mkdir -p "$state" "$run"
  if pid_alive "$run/kubelet.pid" && pid_alive "$run/containerd.pid"; then
    say "reusing the running real node"
    "$here/images.sh" import "$sock"
    return
  fi
  # Leftovers of a node that did not stop cleanly (a killed session): undo them first.
  if [[ -f $state/before.env ]]; then down >/dev/null 2>&1 || true; fi
  mkdir -p "$state" "$run"
  record_before

  # No packet to a pod or Service address may leave this machine: blackhole both.
  local service_range
  service_range=$(tr '\0' '\n' </proc/"$(pgrep -f -- "$cluster_dir.*kube-apiserver" | head -1)"/cmdline 2>/dev/null \
    | sed -n 's/^--service-cluster-ip-range=//p')
  echo "routes $POD_SUBNET ${service_range:-}" >>"$state/before.env"
  ip route replace blackhole "$POD_SUBNET"
  if [[ -n $service_range ]]; then ip route replace blackhole "$service_range"; fi

  # The kubelet runs every pod's cgroup below /$CGROUP_ROOT in each hierarchy.
  local c
  while read -r c; do
    mkdir -p "$c/$CGROUP_ROOT"
    if [[ -f $c/cpuset.cpus ]]; then
      cat "$c/cpuset.cpus" >"$c/$CGROUP_ROOT/cpuset.cpus"
      cat "$c/cpuset.mems" >"$c/$CGROUP_ROOT/cpuset.mems"
    fi
  done < <(cgroup_controllers)

  # containerd's root outlives the node (down removes every container from it): imported
  # images stay, so the next start imports nothing.
  local images_root="$CARAVAN_CACHE/containerd-$node_id"
  mkdir -p "$images_root"
  say "starting containerd (log: $state/containerd.log)"
  mkdir -p "$state/cni/net.d" "$run/cni"
  cat >"$state/cni/net.d/10-caravan.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "caravan-loopback",
 "plugins": [{"type": "caravan-loopback", "subnet": "$POD_SUBNET", "dataDir": "$run/cni"}]}
CNI
  cat >"$state/containerd.toml" <<TOML
version = 2
root = "$images_root"
state = "$run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/caravan-pause:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Without CAP_SYS_RESOURCE (this machine's root lacks it) no process may lower its
  # oom_score_adj: the kubelet asks -998 for sandboxes; keep them at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$here/node/cni"
    conf_dir = "$state/cni/net.d"
TOML
  setsid containerd --config "$state/containerd.toml" >"$state/containerd.log" 2>&1 </dev/null &
  echo $! >"$run/containerd.pid"
  local i
  for i in $(seq 1 100); do
    ctr --address "$sock" version >/dev/null 2>&1 && break
    pid_alive "$run/containerd.pid" || { say "containerd exited; last lines:"; tail -n 20 "$state/containerd.log" >&2; return 1; }
    sleep 0.2
  done

  "$here/images.sh" import "$sock"

  # Volume mounts need shared propagation below the kubelet's root (/ is private here).
  mkdir -p "$state/kubelet" "$state/pod-logs"
  mount --bind "$state/kubelet" "$state/kubelet"
  mount --make-rshared "$state/kubelet"

  local port healthz_port
  port=$(free_port); healthz_port=$(free_port)
  cat >"$state/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
# This machine has cgroup v1 controllers (1.35+ refuses them unless told), and swap.
failCgroupV1: false
failSwapOn: false
# Its own oom_score_adj stays as it is (lowering it needs CAP_SYS_RESOURCE).
oomScoreAdj: 0
podLogsDir: $state/pod-logs
volumePluginDir: $state/volume-plugins
# Real container logs up to 200 MiB before rotation (benchmarks read 50 MB logs whole).
containerLogMaxSize: 200Mi
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $cluster_dir/pki/ca.crt}
authorization: {mode: AlwaysAllow}
# Nothing here may touch the host's firewall beyond what the kubelet insists on.
makeIPTablesUtilChains: false
# Images come from hack/images.sh, never from a registry: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
resolvConf: ""
featureGates:
  PodLogsQuerySplitStreams: true
YAML
  say "starting the kubelet $K8S_VERSION as node $NODE_NAME (log: $state/kubelet.log)"
  setsid "$K8S_BIN_DIR/kubelet" --config "$state/kubelet.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" --root-dir "$state/kubelet" \
    --hostname-override "$NODE_NAME" --node-labels caravan.dev/real-node=true \
    >"$state/kubelet.log" 2>&1 </dev/null &
  echo $! >"$run/kubelet.pid"
  for i in $(seq 1 120); do
    if [[ $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]; then
      say "real node $NODE_NAME Ready"
      return
    fi
    pid_alive "$run/kubelet.pid" || { say "the kubelet exited; last lines:"; tail -n 20 "$state/kubelet.log" >&2; return 1; }
    sleep 0.5
  done
  say "timed out waiting for node $NODE_NAME to be Ready; last kubelet lines:"; tail -n 20 "$state/kubelet.log" >&2
  return 1
}

stop_pid() {  # stop_pid PIDFILE: TERM, then KILL after 10 s
  local f=$1 pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  # Teardown is best effort: one step failing (a cgroup gone, a process already dead) must
  # never stop the ones after it.
  set +e
  [[ -d $state || -d $run ]] || { say "no real node"; return 0; }
  say "stopping the real node"
  stop_pid "$run/kubelet.pid"
  # Every process of every pod, then the shims, then containerd.
  local c p
  while read -r c; do
    [[ -d $c/$CGROUP_ROOT ]] || continue
    find "$c/$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
      kill -KILL "$p" 2>/dev/null || true
    done
  done < <(cgroup_controllers)
  # Every container and sandbox out of containerd's store, so only images outlive the node.
  if pid_alive "$run/containerd.pid"; then
    local ctr_=(ctr --address "$sock" -n k8s.io) id
    for id in $("${ctr_[@]}" tasks ls -q 2>/dev/null); do
      "${ctr_[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
      "${ctr_[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $("${ctr_[@]}" containers ls -q 2>/dev/null); do
      "${ctr_[@]}" containers rm "$id" >/dev/null 2>&1 || true
    done
  fi
  pkill -KILL -f -- "containerd-shim.*-address $sock" 2>/dev/null || true
  stop_pid "$run/containerd.pid"
  pkill -KILL -f -- "--config $state/containerd.toml" 2>/dev/null || true

  # Mounts below our folders, deepest first (rootfs, volumes, the kubelet root itself).
  local m
  for _ in 1 2 3; do
    awk -v a="$state" -v b="$run" -v c="$CARAVAN_CACHE/containerd-$node_id" \
      '$5 ~ "^"a || $5 ~ "^"b || $5 ~ "^"c {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  # Network namespaces the runtime made for sandboxes.
  local before=$state/before.env
  for m in /run/netns/cni-*; do
    [[ -e $m ]] || continue
    grep -qx "netns $m" "$before" 2>/dev/null && continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    rm -f "$m"
  done
  # cgroups, leaves first.
  while read -r c; do
    [[ -d $c/$CGROUP_ROOT ]] || continue
    find "$c/$CGROUP_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done < <(cgroup_controllers)

  # Another checkout's node still running shares the machine-wide settings: leave them.
  local other
  for other in /run/caravan-node-*/kubelet.pid; do
    if [[ $other != "$run/kubelet.pid" ]] && pid_alive "$other"; then
      say "another checkout's real node runs ($(dirname "$other")): routes, sysctls and iptables left to it"
      before=/dev/null
      break
    fi
  done
  if [[ -f $before ]]; then
    local kind a b v
    while read -r kind a b v; do
      case $kind in
        sysctl) if [[ $b != - ]]; then sysctl -qw "$a=$b" >/dev/null 2>&1 || true; fi ;;
        routes) ip route del blackhole "$a" 2>/dev/null || true
                if [[ -n ${b:-} ]]; then ip route del blackhole "$b" 2>/dev/null || true; fi ;;
      esac
    done <"$before"
    # iptables chains the kubelet added (it adds a few even with makeIPTablesUtilChains off).
    local fam cmd t chain
    for fam in 4 6; do
      cmd=iptables; [[ $fam == 6 ]] && cmd=ip6tables
      for t in filter nat mangle; do
        for chain in $($cmd -t "$t" -S 2>/dev/null | awk '$1 == "-N" {print $2}'); do
          grep -qx "chain$fam $t $chain" "$before" && continue
          $cmd -t "$t" -S 2>/dev/null | awk -v c="$chain" '$1 == "-A" && $0 ~ "-j "c"( |$)" {sub("^-A", "-D"); print}' |
            while read -r rule; do eval "$cmd -t $t $rule" 2>/dev/null || true; done
          $cmd -t "$t" -F "$chain" 2>/dev/null || true
          $cmd -t "$t" -X "$chain" 2>/dev/null || true
        done
      done
    done
    for m in /var/log/containers /var/lib/kubelet /run/netns /etc/cni; do
      grep -qx "existed $m" "$before" && continue
      # /run/netns is a mount of itself once a network namespace was made in it.
      while mountpoint -q "$m" 2>/dev/null; do umount -l "$m" 2>/dev/null || break; done
      rm -rf "$m" 2>/dev/null || true
    done
  fi
  rm -rf "$run" "$state"
  say "real node stopped; nothing of it is left"
}

case "${1:-}" in
  up) up "${2:?usage: $0 up CLUSTER_DIR}" ;;
  down) down ;;
  check) r=$(why_not); [[ -z $r ]] || { echo "$r"; exit 3; } ;;
  status) pid_alive "$run/kubelet.pid" ;;
  socket) echo "$sock" ;;
  *) echo "usage: $0 up CLUSTER_DIR|down|check|status|socket" >&2; exit 2 ;;
esac
