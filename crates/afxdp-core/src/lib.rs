pub fn placeholder() {}
pub fn libbpf_probe() -> bool { libbpf_rs::ObjectBuilder::default().debug(false); true }
