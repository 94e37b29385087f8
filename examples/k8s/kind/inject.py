#!/usr/bin/env python3
"""Node-side traffic for the kind end-to-end test.

Runs in the kind node's network namespace (docker run --network
container:<node>). Sends COUNT Ethernet frames (local experimental
ethertype 0x88b5, a marker and a sequence number) out of IFACE, the node
end of the veth pair whose other end is in the pod, addressed to the pod's
MAC, and counts the frames that come back with the MACs swapped. Exit 0 when
every sequence number came back, 1 otherwise; prints one JSON line.
"""
import argparse
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETHERTYPE = 0x88B5
MARKER = b"AFXDPE2E"
PACKET_OUTGOING = 4


def mac_bytes(mac):
    return bytes(int(h, 16) for h in mac.split(":"))


def frame(dst, src, seq):
    f = dst + src + struct.pack("!H", ETHERTYPE) + MARKER + struct.pack("!I", seq)
    return f + bytes(60 - len(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dst", required=True, help="the pod interface's MAC")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--window", type=int, default=64, help="frames in flight")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.iface, 0))
    src = s.getsockname()[4][:6]
    dst = mac_bytes(args.dst)
    seen = set()
    sent = 0
    settled = 0  # frames counted as back or lost: the window slides from here
    now = time.monotonic()
    deadline = now + args.timeout
    last_progress = now
    while len(seen) < args.count and now < deadline:
        while sent < args.count and sent - max(len(seen), settled) < args.window:
            s.send(frame(dst, src, sent))
            sent += 1
        before = len(seen)
        ready, _, _ = select.select([s], [], [], 0.05)
        while ready:
            data, addr = s.recvfrom(2048)
            if addr[2] != PACKET_OUTGOING and len(data) >= 26 \
                    and data[0:6] == src and data[6:12] == dst \
                    and struct.unpack("!H", data[12:14])[0] == ETHERTYPE \
                    and data[14:22] == MARKER:
                seen.add(struct.unpack("!I", data[22:26])[0])
            ready, _, _ = select.select([s], [], [], 0)
        now = time.monotonic()
        if len(seen) > before:
            last_progress = now
        elif now - last_progress > 0.5 and sent < args.count:
            settled = sent  # nothing came back for a while: give the window up as lost
            last_progress = now
    result = {"iface": args.iface, "sent": sent, "returned": len(seen), "expected": args.count,
              "src": src.hex(":"), "dst": args.dst}
    print(json.dumps(result))
    return 0 if len(seen) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
