//! The real-VM harness: boots a busybox initramfs with the static `qga` under
//! `qemu-system-x86_64` (TCG) and talks to the agent over QEMU's chardev sockets with the
//! core's host-side client.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qga_core::client::{Client, ClientConfig, Outcome};

/// Why the VM test cannot run here (a missing tool or binary).
pub fn missing_prerequisite(static_qga: &Path) -> Option<String> {
    for tool in ["qemu-system-x86_64", "busybox", "cpio", "gzip"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    if kernel().is_none() {
        return Some("no /boot/vmlinuz-* kernel (Debian's linux-image-amd64)".into());
    }
    if !static_qga.is_file() {
        return Some(format!(
            "{} is missing (cargo build --profile min --target x86_64-unknown-linux-musl -p qga --bin qga)",
            static_qga.display()
        ));
    }
    None
}

/// The newest installed kernel: (image path, version).
pub fn kernel() -> Option<(PathBuf, String)> {
    let mut best: Option<(PathBuf, String)> = None;
    for e in std::fs::read_dir("/boot").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(ver) = name.strip_prefix("vmlinuz-") {
            if Path::new("/lib/modules").join(ver).is_dir()
                && best.as_ref().is_none_or(|(_, v)| ver > v.as_str())
            {
                best = Some((e.path(), ver.to_string()));
            }
        }
    }
    best
}

/// The static musl binary the VM runs.
pub fn static_qga() -> PathBuf {
    if let Some(p) = std::env::var_os("QGA_STATIC_BIN") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("x86_64-unknown-linux-musl/min/qga")
}

/// A running VM; killed on drop.
pub struct Vm {
    child: Child,
    /// Directory holding the sockets and the console log.
    pub dir: crate::tempdir::TempDir,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vm {
    /// Builds the initramfs and boots it; returns once the guest's init reported that both
    /// agents started.
    pub fn boot() -> Vm {
        let dir = crate::tempdir::TempDir::new("qga-vm").expect("temporary directory");
        let (image, kver) = kernel().expect("kernel");
        let initrd = dir.path().join("initrd.gz");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("vm/build-initramfs.sh");
        let st = Command::new(&script)
            .arg(static_qga())
            .arg(&kver)
            .arg(&initrd)
            .status()
            .expect("run build-initramfs.sh");
        assert!(st.success(), "building the initramfs failed");
        let console = std::fs::File::create(dir.path().join("console.log")).expect("console log");
        let sock = |n: &str| dir.path().join(n).display().to_string();
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "tcg",
                "-m",
                "256",
                "-display",
                "none",
                "-no-reboot",
            ])
            .args(["-serial", "mon:stdio"])
            .arg("-kernel")
            .arg(&image)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0 panic=-1 quiet"])
            .arg("-chardev")
            .arg(format!(
                "socket,path={},server=on,wait=off,id=qga0",
                sock("virtio.sock")
            ))
            .args(["-device", "virtio-serial"])
            .args([
                "-device",
                "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            ])
            .arg("-chardev")
            .arg(format!(
                "socket,path={},server=on,wait=off,id=ser1",
                sock("isa.sock")
            ))
            .args(["-device", "isa-serial,chardev=ser1"])
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-system-x86_64");
        let vm = Vm { child, dir };
        vm.wait_console("QGA-VM: started", Duration::from_secs(120));
        vm
    }

    /// The guest console so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// Waits until the console shows `line`.
    pub fn wait_console(&self, line: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.console().contains(line) {
            assert!(
                start.elapsed() < timeout,
                "guest did not print {line:?} within {timeout:?}; console:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Connects to one of the chardev sockets (`virtio.sock`, `isa.sock`).
    pub fn connect(&self, name: &str) -> Agent {
        let s = UnixStream::connect(self.dir.path().join(name)).expect("connect to the chardev");
        Agent::new(s)
    }
}

/// A synced connection to an agent.
pub struct Agent {
    stream: UnixStream,
    buf: Vec<u8>,
    next_id: i64,
    pending: Vec<u8>,
}

impl Agent {
    fn new(stream: UnixStream) -> Agent {
        Agent {
            stream,
            buf: vec![0u8; 1 << 20],
            next_id: 0x5157_0000 + i64::from(std::process::id()),
            pending: Vec::new(),
        }
    }

    /// Syncs (0xFF + guest-sync-delimited), then runs `command` with JSON `args`; returns the
    /// `return` value as JSON text, or the error reply's text. Each call syncs again, so the
    /// connection may have been used by anyone before.
    pub fn call(&mut self, command: &str, args: Option<&str>) -> Result<serde_json::Value, String> {
        let mut client = Client::new(&mut self.buf[..], ClientConfig::default());
        let start = Instant::now();
        self.next_id += 1;
        let mut wire = Vec::new();
        client
            .write_sync(0, self.next_id, &mut wire)
            .expect("sync bytes");
        let sync = run(
            &mut self.stream,
            &mut client,
            &mut self.pending,
            &wire,
            start,
        );
        assert_eq!(sync, Outcome::Synced, "sync with the agent");
        self.next_id += 1;
        wire.clear();
        client
            .write_request_raw(
                now_ms(start),
                command,
                args.map(str::as_bytes),
                self.next_id,
                &mut wire,
            )
            .map_err(|_| "request rejected by the client".to_string())?;
        match run(
            &mut self.stream,
            &mut client,
            &mut self.pending,
            &wire,
            start,
        ) {
            Outcome::Return => {
                let r = client.reply().expect("reply");
                let end = r.msg.value_end(r.value);
                let text = &r.msg.text[r.value.start..end];
                Ok(serde_json::from_slice(text).expect("reply value is JSON"))
            }
            Outcome::Error => {
                let r = client.reply().expect("reply");
                Err(String::from_utf8_lossy(r.msg.text).into_owned())
            }
            other => Err(format!("{other:?}")),
        }
    }
}

fn now_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Writes `wire`, then feeds received bytes to the client until an outcome.
fn run(
    s: &mut UnixStream,
    client: &mut Client<&mut [u8]>,
    pending: &mut Vec<u8>,
    wire: &[u8],
    start: Instant,
) -> Outcome {
    s.write_all(wire).expect("write to the chardev");
    let mut rx = [0u8; 65536];
    loop {
        if !pending.is_empty() {
            let (used, out) = client.handle_input(now_ms(start), pending);
            pending.drain(..used);
            if let Some(o) = out {
                return o;
            }
        }
        let now = now_ms(start);
        if let Some(o) = client.handle_timeout(now) {
            return o;
        }
        let wait = client
            .deadline()
            .map_or(1000, |d| d.saturating_sub(now).max(1));
        s.set_read_timeout(Some(Duration::from_millis(wait)))
            .expect("timeout");
        match s.read(&mut rx) {
            Ok(0) => return client.handle_eof().unwrap_or(Outcome::Done),
            Ok(n) => pending.extend_from_slice(&rx[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read from the chardev: {e}"),
        }
    }
}
