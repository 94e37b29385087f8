//! Bounds on port settings: the one table every layer agrees on. The core
//! validates with these, the binding exports them (`limits()` in
//! crates/afxdp-node), and lib/config/port-config.ts `limits` carries the
//! same numbers so configs parse without the addon; a test compares the two
//! (test/faults/port.test.ts).

/// Highest queue id (DPDK's devargs are u16 too).
pub const MAX_QUEUE_ID: u32 = 65_535;
/// Most queues one port may open; the interface decides the real limit.
pub const MAX_QUEUE_COUNT: u32 = 65_535;
/// Ring sizes (rx, tx, fill, completion): powers of two in this range.
pub const RING_MIN_SIZE: u32 = 64;
pub const RING_MAX_SIZE: u32 = 16_384;
/// Frame sizes a UMEM may use.
pub const FRAME_SIZES: [u32; 2] = [2048, 4096];
/// Most frames of one UMEM.
pub const MAX_FRAME_COUNT: u32 = 1 << 20;
/// One UMEM stays below 4 GiB: frame addresses are 32-bit offsets (the
/// descriptors shared with JS are u32).
pub const MAX_UMEM_BYTES: u64 = (1 << 32) - 1;
/// XDP_PACKET_HEADROOM, reserved by the kernel in front of every packet.
pub const KERNEL_HEADROOM: u32 = 256;
/// Smallest packet room left in a frame after all headroom.
pub const MIN_FRAME_DATA: u32 = 64;
/// Most descriptors one burst call moves.
pub const MAX_BURST_SIZE: u32 = 1024;

/// `name` = `v` must be a power of two within the ring bounds.
pub fn check_ring_size(name: &str, v: u32) -> crate::Result<()> {
    if !v.is_power_of_two() || !(RING_MIN_SIZE..=RING_MAX_SIZE).contains(&v) {
        return Err(crate::Error::invalid(format!(
            "{name} {v} must be a power of two between {RING_MIN_SIZE} and {RING_MAX_SIZE}"
        )));
    }
    Ok(())
}
