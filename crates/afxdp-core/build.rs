//! Compiles afxdp's XDP programs, bpf/redirect.bpf.c and bpf/meta.bpf.c,
//! into OUT_DIR/<name>.bpf.o, which src/bpf/program.rs embeds with
//! include_bytes!. Two objects, not one: the metadata program's kfunc
//! externs are resolved by libbpf for every program of an object, so the
//! plain redirect program stays loadable on kernels without them.
//!
//! Needs clang with the BPF target (clang >= 11) and linux/bpf.h from the
//! kernel headers (Debian/Ubuntu: `apt-get install clang linux-libc-dev`).
//! `$CLANG` overrides the compiler.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed=bpf/xsks_map.h");
    for name in ["redirect", "meta"] {
        println!("cargo:rerun-if-changed=bpf/{name}.bpf.c");
        compile(&manifest.join(format!("bpf/{name}.bpf.c")), &out.join(format!("{name}.bpf.o")));
    }
}

fn compile(src: &Path, obj: &Path) {
    let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();

    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    // The object follows the target's byte order (bpfel/bpfeb), not the host's.
    let target = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };

    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-target", target, "-Wall", "-c"]);
    // linux/bpf.h includes <asm/types.h>, which Debian/Ubuntu keep in the
    // multiarch directory; clang -target bpf does not search it by itself.
    for dir in multiarch_include_dirs() {
        if dir.join("asm/types.h").exists() {
            cmd.arg("-idirafter").arg(&dir);
        }
    }
    cmd.arg(src).arg("-o").arg(obj);

    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "afxdp-core needs clang to compile its XDP program (bpf/{name}), but `{clang}` was not found: \
             install clang (apt-get install clang) or point $CLANG at a clang with the BPF target"
        ),
        Err(e) => panic!("cannot run `{clang}` to compile bpf/{name}: {e}"),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("asm/types.h") || stderr.contains("linux/bpf.h") {
            "\nhint: install the kernel headers (apt-get install linux-libc-dev) \
             — on Debian/Ubuntu <asm/types.h> lives in /usr/include/<multiarch>/"
        } else if stderr.contains("unknown target") || stderr.contains("No available targets") {
            "\nhint: this clang lacks the BPF backend; install clang (apt-get install clang)"
        } else {
            ""
        };
        panic!("compiling bpf/{name} with `{cmd:?}` failed:\n{stderr}{hint}");
    }
}

/// /usr/include/<multiarch> candidates for the build host's headers.
fn multiarch_include_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // The BPF object only uses UAPI types whose layout is the same for every
    // 64-bit Linux arch, so the host's headers are the right ones to find.
    if let Ok(o) = Command::new("gcc").arg("-print-multiarch").output() {
        let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if o.status.success() && !s.is_empty() {
            dirs.push(Path::new("/usr/include").join(s));
        }
    }
    let arch = env::consts::ARCH; // the build host's arch (build scripts run on the host)
    dirs.push(Path::new("/usr/include").join(format!("{arch}-linux-gnu")));
    dirs
}
