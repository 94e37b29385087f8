//! Core errors become JS errors whose `code` is the core's stable code, so
//! the facade can rethrow them as typed `AfxdpError`s.
//!
//! napi-rs turns an `Error<String>` into a JS error with `code` and
//! `message` only, so errno and path travel in a fixed trailer at the end of
//! the message: `\u{1}afxdp:` followed by JSON (`{"errno":13,"path":"/x"}`).
//! `fromNative` in lib/errors.ts parses and strips it (`TRAILER` there).

use afxdp_core::{Code, Error};
use napi_derive::napi;

// Named `Result` on purpose: napi-derive recognises fallible functions by
// that name, and a JS error takes its `code` from the String status.
pub type Result<T> = std::result::Result<T, napi::Error<String>>;

/// Starts the errno/path trailer of a message.
const TRAILER: &str = "\u{1}afxdp:";

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The message JS receives: the core's message plus, when there is an errno
/// or a path, the trailer.
pub fn js_message(e: &Error) -> String {
    let mut fields = Vec::new();
    if let Some(errno) = e.errno {
        fields.push(format!("\"errno\":{errno}"));
    }
    if let Some(path) = &e.path {
        fields.push(format!("\"path\":{}", json_string(path)));
    }
    if fields.is_empty() {
        e.message.clone()
    } else {
        format!("{}{TRAILER}{{{}}}", e.message, fields.join(","))
    }
}

pub fn to_js(e: Error) -> napi::Error<String> {
    napi::Error::new(e.code.as_str().to_string(), js_message(&e))
}

pub fn invalid(message: impl Into<String>) -> napi::Error<String> {
    to_js(Error::invalid(message))
}

pub fn from_napi(e: napi::Error) -> napi::Error<String> {
    napi::Error::new("ERR_AFXDP_SYSTEM".to_string(), e.reason.clone())
}

/// Every error code the native side throws (`Code::ALL`), for the test
/// that lib/errors.ts lists the same.
#[napi]
pub fn error_codes() -> Vec<String> {
    Code::ALL.iter().map(|c| c.as_str().to_string()).collect()
}
