//! `NativePacketSocket`: an AF_PACKET socket as an independent traffic
//! peer for tests, `afxdp demo` and the benchmark. Not a fast path: frames
//! cross the boundary as Buffers.

use std::time::{Duration, Instant};

use afxdp_core::netns;
use afxdp_core::packet::PacketSocket;
use afxdp_core::Error;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::error::{to_js, Result};

#[napi]
pub struct NativePacketSocket {
    socket: Option<PacketSocket>,
}

#[napi]
impl NativePacketSocket {
    /// Open on `ifname`, inside network namespace `netns` when given.
    #[napi(factory)]
    pub fn open(ifname: String, netns: Option<String>) -> Result<NativePacketSocket> {
        let socket = netns::within(netns.as_deref(), || PacketSocket::open(&ifname)).map_err(to_js)?;
        Ok(NativePacketSocket { socket: Some(socket) })
    }

    fn socket(&self) -> Result<&PacketSocket> {
        self.socket.as_ref().ok_or_else(|| to_js(Error::closed("this packet socket")))
    }

    /// Send every frame; returns how many the kernel took.
    #[napi]
    pub fn send(&self, frames: Vec<Buffer>) -> Result<u32> {
        let socket = self.socket()?;
        let slices: Vec<&[u8]> = frames.iter().map(|b| b.as_ref()).collect();
        socket.send_batch(&slices).map(|n| n as u32).map_err(to_js)
    }

    /// Receive up to `max` frames, returning early once `max` arrived or
    /// `timeout_ms` passed since the call.
    #[napi]
    pub fn recv(&self, max: u32, timeout_ms: u32) -> Result<Vec<Buffer>> {
        let socket = self.socket()?;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        while frames.len() < max as usize {
            let left = deadline.saturating_duration_since(Instant::now());
            match socket.recv(&mut buf, left).map_err(to_js)? {
                Some(n) => frames.push(Buffer::from(buf[..n.min(buf.len())].to_vec())),
                None => break,
            }
        }
        Ok(frames)
    }

    /// Drop whatever is queued; returns how many frames that was.
    #[napi]
    pub fn drain(&self) -> Result<u32> {
        Ok(self.socket()?.drain() as u32)
    }

    #[napi]
    pub fn close(&mut self) {
        self.socket = None;
    }
}
