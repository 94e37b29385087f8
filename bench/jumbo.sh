#!/bin/sh
# Jumbo-frame (multi-buffer) macswap throughput on a veth pair with MTU 9000
# at both ends (issue 16): `afxdp fwd --forward-mode txonly --txpkts LEN` in
# one namespace generates LEN-byte frames as multi-buffer chains (CPU 0),
# `afxdp fwd --forward-mode macswap` in the other swaps and sends them back
# (CPU 1). Prints the forwarder's per-second tx rate (Gbit/s of frames sent
# back, without FCS) and the median. Needs root, 2 CPUs, iproute2, taskset.
#
#   sudo bench/jumbo.sh [LEN=8000] [SECONDS=10] [extra fwd options...]
#
# Environment: MTU (default 9000), FWD_POLL/GEN_POLL (poll modes, default
# busy), GEN_ARGS (more generator options, e.g. "--tx-rate 100000"), KEEP
# (copy the forwarder's JSON lines there).
set -eu
LEN=${1:-8000}
SECS=${2:-10}
shift 2 2>/dev/null || shift $#
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AFXDP="node $ROOT/bin/afxdp.js"
ID=$$
P=afxj-p$ID Q=afxj-q$ID
cleanup() { ip netns del "$P" 2>/dev/null || true; ip netns del "$Q" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$P"
ip netns add "$Q"
ip link add jp$ID netns "$P" type veth peer name jq$ID netns "$Q"
jumbo() {
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  ip -n "$1" link set "$2" mtu "${MTU:-9000}" up
}
jumbo "$P" jp$ID
jumbo "$Q" jq$ID
PMAC=$(ip -n "$P" -j link show jp$ID | sed 's/.*"address":"\([^"]*\)".*/\1/')
OUT=$(mktemp)
taskset -c 1 $AFXDP fwd --vdev net_af_xdp0,iface=jp$ID --netns "$P" --forward-mode macswap --poll-mode "${FWD_POLL:-busy}" \
  --json --stats-period 1 --duration $((SECS + 3)) "$@" > "$OUT" &
FWD=$!
sleep 2
taskset -c 0 $AFXDP fwd --vdev net_af_xdp0,iface=jq$ID --netns "$Q" --forward-mode txonly --txpkts "$LEN" \
  --eth-peer "$PMAC" --poll-mode "${GEN_POLL:-busy}" ${GEN_ARGS:-} --stats-period 0 --duration $((SECS + 1)) > /dev/null &
GEN=$!
wait $GEN || true
wait $FWD || true
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const start = lines.find((o) => o.type === "start");
const rates = lines.filter((o) => o.type === "stats").map((o) => o.ports[0]).filter((p) => p.txPps > 0);
const gbit = rates.map((p) => p.txBps / 1e9).slice(1, -1); // whole seconds only
for (const p of rates) console.log(`${(p.txBps / 1e9).toFixed(2)} Gbit/s  ${p.txPps} frames/s`);
gbit.sort((a, b) => a - b);
console.log(`multiBuffer ${start.ports[0].multiBuffer}, ${start.ports[0].xdpMode}; median ${gbit[gbit.length >> 1]?.toFixed(2)} Gbit/s of ${process.argv[2]}-byte frames`);
' "$OUT" "$LEN"
[ -n "${KEEP:-}" ] && cp "$OUT" "$KEEP"
rm -f "$OUT"
