// Swap the destination and source Ethernet addresses of `n` packets in
// place: the packet at byte offset addrs[i] of `frames` (a UMEM view).
// Unrolled: this runs once per packet in macswap forwarders. The `!`s are
// erased: n <= addrs.length and a + 11 < frames.length (a frame holds at
// least an Ethernet header) are the caller's contract.
//
// With `options` (multi-buffer chains, docs/api.md), only the first
// fragment of each chain holds the Ethernet header: a slot whose previous
// slot has XDP_PKT_CONTD is skipped. Slots [start, start + n).
export function swapMacs(frames: Uint8Array, addrs: Uint32Array, n: number, options?: Uint32Array, start = 0): void {
  for (let i = start; i < start + n; i++) {
    if (options !== undefined && i > start && (options[i - 1]! & 1) !== 0) continue;
    const a = addrs[i]!;
    let t = frames[a]!; frames[a] = frames[a + 6]!; frames[a + 6] = t;
    t = frames[a + 1]!; frames[a + 1] = frames[a + 7]!; frames[a + 7] = t;
    t = frames[a + 2]!; frames[a + 2] = frames[a + 8]!; frames[a + 8] = t;
    t = frames[a + 3]!; frames[a + 3] = frames[a + 9]!; frames[a + 9] = t;
    t = frames[a + 4]!; frames[a + 4] = frames[a + 10]!; frames[a + 10] = t;
    t = frames[a + 5]!; frames[a + 5] = frames[a + 11]!; frames[a + 11] = t;
  }
}
