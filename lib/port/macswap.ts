// Swap the destination and source Ethernet addresses of `n` packets in
// place: the packet at byte offset addrs[i] of `frames` (a UMEM view).
// Unrolled: this runs once per packet in macswap forwarders. The `!`s are
// erased: n <= addrs.length and a + 11 < frames.length (a frame holds at
// least an Ethernet header) are the caller's contract.
export function swapMacs(frames: Uint8Array, addrs: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = addrs[i]!;
    let t = frames[a]!; frames[a] = frames[a + 6]!; frames[a + 6] = t;
    t = frames[a + 1]!; frames[a + 1] = frames[a + 7]!; frames[a + 7] = t;
    t = frames[a + 2]!; frames[a + 2] = frames[a + 8]!; frames[a + 8] = t;
    t = frames[a + 3]!; frames[a + 3] = frames[a + 9]!; frames[a + 9] = t;
    t = frames[a + 4]!; frames[a + 4] = frames[a + 10]!; frames[a + 10] = t;
    t = frames[a + 5]!; frames[a + 5] = frames[a + 11]!; frames[a + 11] = t;
  }
}
