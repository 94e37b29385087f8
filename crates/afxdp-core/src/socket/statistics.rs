//! XDP_STATISTICS: the kernel's per-socket drop and error counters.

use super::{getsockopt, XskSocket};
use crate::{Error, Result};

/// The six counters of `struct xdp_statistics` (Linux >= 5.9 for the last three).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpStatistics {
    /// Packets dropped for reasons other than invalid descriptors (rx).
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    /// Tx descriptors the kernel refused (bad address/length).
    pub tx_invalid_descs: u64,
    /// Packets dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when a packet arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the tx ring was empty when the kernel looked for work.
    pub tx_ring_empty_descs: u64,
}

impl XskSocket {
    pub fn statistics(&self) -> Result<XdpStatistics> {
        let mut s: libc::xdp_statistics = crate::sys::zeroed();
        // Older kernels write only the first three (shorter length); the rest stay 0.
        getsockopt(self.fd(), libc::SOL_XDP, libc::XDP_STATISTICS, &mut s)
            .map_err(|e| Error::sys("getsockopt(XDP_STATISTICS)", e))?;
        Ok(XdpStatistics {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }
}
