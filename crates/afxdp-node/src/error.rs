//! Core errors become JS errors whose `code` is the core's stable code, so
//! the facade can rethrow them as typed `AfxdpError`s.

use afxdp_core::Error;

// Named `Result` on purpose: napi-derive recognises fallible functions by
// that name, and a JS error takes its `code` from the String status.
pub type Result<T> = std::result::Result<T, napi::Error<String>>;

pub fn to_js(e: Error) -> napi::Error<String> {
    napi::Error::new(e.code.as_str().to_string(), e.message)
}

pub fn invalid(message: impl Into<String>) -> napi::Error<String> {
    to_js(Error::invalid(message))
}

pub fn from_napi(e: napi::Error) -> napi::Error<String> {
    napi::Error::new("ERR_AFXDP_SYSTEM".to_string(), e.reason.clone())
}
