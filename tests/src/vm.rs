//! The real-VM harness: boots a busybox initramfs with the static `qga` under
//! `qemu-system-x86_64` (TCG) and talks to the agent over QEMU's chardev sockets with the
//! core's host-side client. Optionally with an ext4 virtio-blk disk (made with `mkfs.ext4` on
//! the host) and a QMP monitor socket ([`Qmp`]) to watch the machine's run state and events.

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
    for bin in [
        static_qga.to_path_buf(),
        static_qga.with_file_name("qga-client"),
    ] {
        if !bin.is_file() {
            return Some(format!(
                "{} is missing (cargo build --profile min --target x86_64-unknown-linux-musl \
                 -p qga --bin qga --bin qga-client)",
                bin.display()
            ));
        }
    }
    None
}

/// Whether the VM test named `test` can run, given what [`missing_prerequisite`] (or
/// [`missing_power_prerequisite`]) found missing: it skips with the reason printed, or fails
/// when `QGA_REQUIRE_VM=1` (CI), where a skip would hide a missing test.
pub fn ready(test: &str, missing: Option<String>) -> bool {
    match missing {
        None => true,
        Some(why) if std::env::var("QGA_REQUIRE_VM").as_deref() == Ok("1") => {
            panic!("VM test required (QGA_REQUIRE_VM=1) but {why}")
        }
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
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

/// The static musl binary the VM runs (the static `qga-client` is taken from the same
/// directory).
pub fn static_qga() -> PathBuf {
    if let Some(p) = std::env::var_os("QGA_STATIC_BIN") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("x86_64-unknown-linux-musl/min/qga")
}

/// Why the VM power test cannot run here: what [`missing_prerequisite`] checks, and
/// `mkfs.ext4` for the disk.
pub fn missing_power_prerequisite(static_qga: &Path) -> Option<String> {
    if let Some(why) = missing_prerequisite(static_qga) {
        return Some(why);
    }
    let found = ["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"]
        .iter()
        .any(|p| Path::new(p).is_file())
        || std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("mkfs.ext4").is_file()))
            .unwrap_or(false);
    (!found).then(|| "mkfs.ext4 is not installed (e2fsprogs)".to_string())
}

/// How to start a VM.
#[derive(Clone, Debug)]
pub struct VmOptions {
    /// A raw disk image attached as the first virtio-blk disk (`/dev/vda`), discard enabled.
    pub disk: Option<PathBuf>,
    /// A QMP socket (`qmp.sock` in the VM directory).
    pub qmp: bool,
    /// `-no-reboot`: a guest reset ends QEMU instead of rebooting.
    pub no_reboot: bool,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            disk: None,
            qmp: false,
            no_reboot: true,
        }
    }
}

/// Makes a 64 MiB ext4 image at `path` with `files` (name, contents) in its root directory.
pub fn make_ext4_image(path: &Path, files: &[(&str, &[u8])]) {
    let seed = path.with_extension("seed");
    std::fs::create_dir_all(&seed).expect("seed directory");
    for (name, data) in files {
        std::fs::write(seed.join(name), data).expect("seed file");
    }
    let mkfs = ["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("mkfs.ext4");
    let st = Command::new(mkfs)
        .args(["-q", "-F", "-L", "qga-test", "-d"])
        .arg(&seed)
        .arg(path)
        .arg("64M")
        .stdin(Stdio::null())
        .status()
        .expect("run mkfs.ext4");
    assert!(st.success(), "mkfs.ext4 failed");
    let _ = std::fs::remove_dir_all(&seed);
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
        let vm = Self::start(dir, &VmOptions::default());
        vm.wait_console("QGA-VM: started", Duration::from_secs(120));
        vm
    }

    /// Boots with `opts` in `dir` (which may already hold the disk image); returns once QEMU
    /// runs, without waiting for the guest.
    pub fn start_in(dir: crate::tempdir::TempDir, opts: &VmOptions) -> Vm {
        Self::start(dir, opts)
    }

    fn start(dir: crate::tempdir::TempDir, opts: &VmOptions) -> Vm {
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
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-accel", "tcg", "-m", "256", "-display", "none"]);
        if opts.no_reboot {
            qemu.arg("-no-reboot");
        }
        if let Some(disk) = &opts.disk {
            qemu.arg("-drive").arg(format!(
                "file={},if=none,id=disk0,format=raw,discard=unmap",
                disk.display()
            ));
            qemu.args(["-device", "virtio-blk-pci,drive=disk0"]);
        }
        if opts.qmp {
            qemu.arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", sock("qmp.sock")));
        }
        let child = qemu
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
        Vm { child, dir }
    }

    /// How often `line` appears on the console so far.
    pub fn console_count(&self, line: &str) -> usize {
        self.console().matches(line).count()
    }

    /// Waits until the console shows `line` at least `n` times; false on timeout.
    pub fn wait_console_count(&self, line: &str, n: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.console_count(line) < n {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    /// Waits for QEMU to exit; `None` if it still runs after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Connects to the QMP socket (the VM must have been started with `qmp: true`).
    pub fn qmp(&self) -> Qmp {
        Qmp::connect(&self.dir.path().join("qmp.sock"))
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

/// Client settings for a guest emulated by TCG on a shared 2-core machine: generous deadlines
/// (a sync answered in 5 s on an idle host can take longer under load).
fn patient() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.timeouts.sync = 60_000;
    config.timeouts.default = 60_000;
    config
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
        self.call_with(command, args, patient())
    }

    /// Like [`Agent::call`], but a sync that does not complete is an `Err` (the agent is gone
    /// or not up yet) instead of a panic.
    pub fn try_call(
        &mut self,
        command: &str,
        args: Option<&str>,
        timeout: Duration,
    ) -> Result<serde_json::Value, String> {
        let mut config = ClientConfig::default();
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        config.timeouts.sync = ms;
        config.timeouts.default = ms;
        self.call_inner(command, args, config, false)
    }

    /// A command without a success reply (`guest-shutdown`, `guest-suspend-*`): `Ok(())` when no
    /// error reply came within `wait` (or the connection ended), else the error reply's text.
    pub fn call_no_reply(
        &mut self,
        command: &str,
        args: Option<&str>,
        wait: Duration,
    ) -> Result<(), String> {
        let mut config = patient();
        config.timeouts.no_reply = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        match self.call_with(command, args, config) {
            Ok(serde_json::Value::Null) => Ok(()),
            Ok(v) => Err(format!("unexpected success reply {v}")),
            Err(e) => Err(e),
        }
    }

    /// Runs `script` with `/bin/sh -c` in the guest (`guest-exec`, output merged) and waits up
    /// to 30 s for it: (exit code, output).
    pub fn sh(&mut self, script: &str) -> (i64, String) {
        use base64::Engine as _;
        let args = serde_json::json!({"path": "/bin/sh", "arg": ["-c", script], "capture-output": "merged"});
        let pid = self
            .call("guest-exec", Some(&args.to_string()))
            .unwrap_or_else(|e| panic!("guest-exec {script:?}: {e}"))["pid"]
            .as_i64()
            .expect("guest-exec pid");
        let start = Instant::now();
        loop {
            let st = self
                .call(
                    "guest-exec-status",
                    Some(&serde_json::json!({ "pid": pid }).to_string()),
                )
                .unwrap_or_else(|e| panic!("guest-exec-status: {e}"));
            if st["exited"] == true {
                let out = base64::engine::general_purpose::STANDARD
                    .decode(st["out-data"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                return (
                    st["exitcode"].as_i64().unwrap_or(-1),
                    String::from_utf8_lossy(&out).into_owned(),
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "guest command did not finish: {script}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call_with(
        &mut self,
        command: &str,
        args: Option<&str>,
        config: ClientConfig,
    ) -> Result<serde_json::Value, String> {
        self.call_inner(command, args, config, true)
    }

    fn call_inner(
        &mut self,
        command: &str,
        args: Option<&str>,
        config: ClientConfig,
        must_sync: bool,
    ) -> Result<serde_json::Value, String> {
        let mut client = Client::new(&mut self.buf[..], config);
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
        if !must_sync && sync != Outcome::Synced {
            self.pending.clear();
            return Err(format!("no sync: {sync:?}"));
        }
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
            Outcome::Done => Ok(serde_json::Value::Null),
            other => Err(format!("{other:?}")),
        }
    }
}

/// A QMP monitor connection: commands, and the events seen so far.
pub struct Qmp {
    stream: UnixStream,
    pending: Vec<u8>,
    /// Every event received, in order.
    pub events: Vec<serde_json::Value>,
}

impl Qmp {
    /// Connects (retrying for 10 s while QEMU creates the socket) and enters command mode.
    pub fn connect(path: &Path) -> Qmp {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "connect to QMP at {}: {e}",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let mut qmp = Qmp {
            stream,
            pending: Vec::new(),
            events: Vec::new(),
        };
        let greeting = qmp
            .read_message(Duration::from_secs(10))
            .expect("QMP greeting");
        assert!(greeting.get("QMP").is_some(), "QMP greeting: {greeting}");
        qmp.execute("qmp_capabilities", None)
            .expect("qmp_capabilities");
        qmp
    }

    /// The next message (a reply or an event), or `None` at EOF or after `timeout`.
    fn read_message(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        let start = Instant::now();
        loop {
            if let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=nl).collect();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                    return Some(v);
                }
                continue;
            }
            let left = timeout.checked_sub(start.elapsed())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// Runs a command: its `return` value, or the error's description.
    pub fn execute(
        &mut self,
        command: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let mut req = serde_json::json!({ "execute": command });
        if let Some(a) = args {
            req["arguments"] = a;
        }
        let mut line = serde_json::to_vec(&req).expect("QMP request");
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .map_err(|e| format!("QMP write: {e}"))?;
        loop {
            let msg = self
                .read_message(Duration::from_secs(30))
                .ok_or_else(|| format!("no QMP reply to {command}"))?;
            if msg.get("event").is_some() {
                self.events.push(msg);
            } else if let Some(r) = msg.get("return") {
                return Ok(r.clone());
            } else if let Some(e) = msg.get("error") {
                return Err(e.to_string());
            }
        }
    }

    /// `query-status`'s `status` (`running`, `suspended`, `shutdown`, …).
    pub fn status(&mut self) -> String {
        self.execute("query-status", None)
            .ok()
            .and_then(|r| r["status"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits for an event named `name` not seen before (events already received count): the
    /// event, or `None` after `timeout` or when QEMU closed the socket.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Option<serde_json::Value> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
                return Some(self.events.remove(i));
            }
            let left = timeout.checked_sub(start.elapsed())?;
            let msg = self.read_message(left)?;
            if msg.get("event").is_some() {
                self.events.push(msg);
            }
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
