use napi_derive::napi;

#[napi]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
#[napi]
pub fn probe() -> bool { afxdp_core::libbpf_probe() }
