#!/usr/bin/env bash
# End-to-end on kind: the AF_XDP Device Plugin in its kind mode, afxdp's
# macswap pod, traffic from the node side, every packet back.
#
#   examples/k8s/kind/e2e.sh DP_REPO_DIR [IMAGE]
#
# DP_REPO_DIR  a clone of redhat-et/afxdp-plugins-for-kubernetes where
#              `make image CTR_CMD=docker` has built afxdp-device-plugin:latest
#              (the Makefile prefers podman when both exist; kind loads from docker)
# IMAGE        the afxdp application image (Dockerfile), default afxdp-app:e2e
#
# Needs docker, kind, kubectl and root for nothing but the optional sysctl
# below. The GitHub workflow .github/workflows/ci.yml (job kind-e2e) runs
# it; it cannot run where no Docker engine runs.
#
# What it checks (docs: peers-users §3.4): the DP advertises afxdp/myPool,
# the pod gets a device and the pinned XSKMAP with only NET_RAW and
# IPC_LOCK, `afxdp fwd` opens it, and COUNT frames injected on the node end
# of the pod's veth pair all come back with their MAC addresses swapped.
set -euo pipefail

DP_DIR=$(cd "${1:?usage: $0 DP_REPO_DIR [IMAGE]}" && pwd)
IMAGE=${2:-afxdp-app:e2e}
CLUSTER=${CLUSTER:-af-xdp-deployment}
COUNT=${COUNT:-1000}
# The DP's own Makefile (setup-multus) applies Multus from master; pin it with MULTUS_MANIFEST.
MULTUS_MANIFEST=${MULTUS_MANIFEST:-https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/master/deployments/multus-daemonset.yml}
INJECT_IMAGE=${INJECT_IMAGE:-python:3.12-slim}
HERE=$(cd "$(dirname "$0")" && pwd)
K8S=$(dirname "$HERE")
POD=afxdp-macswap

log() { printf '\n== %s\n' "$*"; }

dump() {
  log "diagnostics"
  kubectl get nodes -o wide || true
  kubectl get pods -A -o wide || true
  kubectl describe pod "$POD" || true
  kubectl logs "$POD" || true
  kubectl -n kube-system logs -l name=afxdp-device-plugin --tail=200 || true
  for node in $(kind get nodes --name "$CLUSTER" 2>/dev/null); do
    echo "--- $node"
    docker exec "$node" ip -d link show || true
    docker exec "$node" sh -c 'tail -n 50 /var/log/afxdp-k8s-plugins/*.log' || true
  done
}
trap 'status=$?; [ $status -eq 0 ] || dump; exit $status' EXIT

log "kind cluster from the DP's hack/kind-config.yaml (2 workers, /tmp/afxdp_dp bind-mounted)"
mkdir -p /tmp/afxdp_dp /tmp/afxdp_dp2
kind create cluster --name "$CLUSTER" --config "$DP_DIR/hack/kind-config.yaml" --wait 180s
kubectl label node "$CLUSTER-worker" "$CLUSTER-worker2" cndp=true

log "Multus"
kubectl apply -f "$MULTUS_MANIFEST"
kubectl -n kube-system rollout status daemonset/kube-multus-ds --timeout=300s

log "AF_XDP Device Plugin, kind mode (daemonset-kind.yaml: pinned maps, no UDS), image from make image"
kind load docker-image afxdp-device-plugin:latest --name "$CLUSTER"
# daemonset-kind.yaml names the published image; use the one just built.
sed -E 's#image: .*afxdp-device-plugin.*#image: docker.io/library/afxdp-device-plugin:latest#' \
  "$DP_DIR/deployments/daemonset-kind.yaml" | kubectl apply -f -
kubectl -n kube-system rollout status daemonset/kube-afxdp-device-plugin --timeout=300s

# Opening a pinned map needs no privilege on kernels >= 6.6 (only map
# creation and program loading obey kernel.unprivileged_bpf_disabled);
# older kernels need the sysctl the DP's README gives, or CAP_BPF.
kernel=$(uname -r)
if [ "$(printf '%s\n6.6\n' "${kernel%%-*}" | sort -V | head -1)" != "6.6" ]; then
  log "kernel $kernel < 6.6: kernel.unprivileged_bpf_disabled=0"
  docker exec "$CLUSTER-worker" sysctl -w kernel.unprivileged_bpf_disabled=0
fi

log "waiting for afxdp/myPool on a worker"
for _ in $(seq 60); do
  capacity=$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.allocatable.afxdp/myPool}{" "}{end}')
  case "$capacity" in *[1-9]*) break ;; esac
  sleep 5
done
echo "allocatable afxdp/myPool per node: $capacity"
case "$capacity" in *[1-9]*) ;; *) echo "the Device Plugin advertised no afxdp/myPool" >&2; exit 1 ;; esac

log "afxdp image, NAD (pinned maps), macswap pod"
kind load docker-image "$IMAGE" --name "$CLUSTER"
kubectl apply -f "$K8S/nad-pinned.yaml"
sed "s#image: afxdp-app:e2e#image: $IMAGE#" "$HERE/macswap-pod.yaml" | kubectl apply -f -
kubectl wait --for=condition=Ready "pod/$POD" --timeout=300s
for _ in $(seq 60); do
  kubectl logs "$POD" | grep -q 'forward-mode macswap' && break
  [ "$(kubectl get pod "$POD" -o jsonpath='{.status.phase}')" = Running ] || break
  sleep 2
done
kubectl logs "$POD"
kubectl logs "$POD" | grep -q 'forward-mode macswap'

log "the pod's device and the node end of its veth pair"
DEV=$(kubectl exec "$POD" -- sh -c 'echo "${AFXDP_DEVICES_MYPOOL%% *}"')
POD_MAC=$(kubectl exec "$POD" -- cat "/sys/class/net/$DEV/address")
PEER_INDEX=$(kubectl exec "$POD" -- cat "/sys/class/net/$DEV/iflink")
NODE=$(kubectl get pod "$POD" -o jsonpath='{.spec.nodeName}')
PEER=$(docker exec "$NODE" ip -o link show | awk -F': ' -v i="$PEER_INDEX" '$1 == i { split($2, a, "@"); print a[1] }')
echo "pod $POD on $NODE: $DEV ($POD_MAC); node side: $PEER (ifindex $PEER_INDEX)"
[ -n "$DEV" ] && [ -n "$PEER" ]
kubectl exec "$POD" -- ls -l "/tmp/afxdp_dp/$DEV/xsks_map"

log "inject $COUNT frames from the node side, count the swapped ones"
docker run --rm --network "container:$NODE" --cap-add NET_RAW \
  -v "$HERE/inject.py:/inject.py:ro" "$INJECT_IMAGE" \
  python3 /inject.py --iface "$PEER" --dst "$POD_MAC" --count "$COUNT"

log "pod statistics"
sleep 6
kubectl logs "$POD" --tail=5
kubectl delete pod "$POD" --wait=true --timeout=120s
log "passed: $COUNT of $COUNT frames came back through afxdp fwd macswap in the pod"
