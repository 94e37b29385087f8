//! napi-rs binding of afxdp-core: a thin, batch-oriented skin. All logic
//! lives in the core crate; this crate converts arguments, shares memory
//! with JS and maps errors to coded JS errors.

// Under `cfg(test)` (`cargo clippy --all-targets`) napi-derive registers
// nothing, so every exported function looks unused there.
#![cfg_attr(test, allow(dead_code))]

mod dp;
mod error;
mod fd;
mod peer;
mod port;
mod probe;
mod queue_calls;
mod shared_memory;
mod transfer;
mod wakeup;

use napi_derive::napi;

#[napi]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
