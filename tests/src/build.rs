//! The package's binaries for black-box tests, built with cargo on demand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `target/<profile>`: the directory above this test binary's `deps`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_owned()
}

/// Binary `bin` of the `qga` package (std-shell): the path in `$env_override` when it is set,
/// else built with `cargo build -p qga --bin <bin>` (a no-op when fresh) in the release profile
/// or in this test binary's own profile. If cargo cannot build it, an existing binary in the
/// profile directory is used with a warning; without one the test fails.
pub fn qga_package_bin(bin: &str, release: bool, env_override: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_override) {
        return PathBuf::from(path);
    }
    let dir = profile_dir();
    let profile = if release {
        "release".to_owned()
    } else {
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        }
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../std-shell/Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "-p", "qga", "--bin", bin, "--profile", &profile])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run cargo");
    let built = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == bin)
        .find_map(|v| v["executable"].as_str().map(PathBuf::from));
    match built {
        Some(path) if output.status.success() => path,
        _ => {
            let fallback = dir.join(bin);
            assert!(
                fallback.is_file(),
                "cannot build {bin} (cargo: {}) and {} does not exist",
                output.status,
                fallback.display()
            );
            println!(
                "WARNING: cargo could not build {bin}; using {}",
                fallback.display()
            );
            fallback
        }
    }
}
