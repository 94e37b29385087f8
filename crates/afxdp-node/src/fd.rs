//! A file descriptor owned by native code and handed around JS as an
//! opaque object, so a received XSKMAP fd can never leak as a bare number.

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use afxdp_core::Error;
use napi_derive::napi;

use crate::error::{to_js, Result};

#[napi]
pub struct NativeFd {
    fd: Mutex<Option<OwnedFd>>,
}

impl NativeFd {
    pub fn new(fd: OwnedFd) -> Self {
        NativeFd { fd: Mutex::new(Some(fd)) }
    }

    /// Take the fd out (it can be taken once).
    pub fn take(&self) -> Result<OwnedFd> {
        self.fd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| to_js(Error::closed("this file descriptor (already used or closed)")))
    }
}

#[napi]
impl NativeFd {
    /// Close the fd now; idempotent.
    #[napi]
    pub fn close(&self) {
        drop(self.fd.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.fd.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }
}
