//! The real-VM test of the commands that freeze, trim, set the clock, suspend and shut down:
//! qga inside the busybox initramfs under qemu-system-x86_64 (TCG), with an ext4 virtio-blk
//! disk made on the host. None of these commands ever runs on the machine running the test.
//!
//! One QEMU process, three boots of the guest:
//!
//! 1. busybox init as PID 1 (it restarts the agents when they die; the virtio agent has an
//!    fsfreeze hook, the isa agent a 3 s `--fsfreeze-timeout`): freeze and thaw with a write
//!    blocked in between, the hook's calls, freeze-list, hook failures, the agent killed while
//!    frozen and coming back frozen, the watchdog, fstrim, the clock and the RTC, suspend to
//!    RAM (when the guest kernel offers S3), then `guest-shutdown` halt (busybox init's
//!    signal): the CPU stops while QEMU keeps running; QMP `system_reset` starts boot 2.
//! 2. busybox init: `guest-shutdown` reboot through a `/sbin/reboot` program (the newest
//!    qemu-ga's path): QEMU reports a guest reset and the guest boots again.
//! 3. a shell script as PID 1 (no init to ask, no `/sbin/poweroff`): `guest-shutdown` powerdown
//!    through `reboot(2)`: QEMU reports a guest shutdown and exits.
//!
//! Every check is printed with its result; the test fails at the end if any failed. Skips with a
//! printed reason where QEMU, a kernel, mkfs.ext4 or the static binary is missing, unless
//! QGA_REQUIRE_VM=1 (CI), where it fails instead.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use qga_tests::vm::{
    Agent, Vm, VmOptions, make_ext4_image, missing_power_prerequisite, ready, static_qga,
};
use serde_json::{Value, json};

/// The checks made so far, printed as they are made.
struct Checks {
    start: Instant,
    failed: Vec<String>,
    passed: usize,
}

impl Checks {
    fn new() -> Checks {
        Checks {
            start: Instant::now(),
            failed: Vec::new(),
            passed: 0,
        }
    }

    fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) -> bool {
        eprintln!(
            "[{:6.1} s] {} {name}: {}",
            self.start.elapsed().as_secs_f64(),
            if ok { "ok  " } else { "FAIL" },
            detail.as_ref()
        );
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(name.to_owned());
        }
        ok
    }
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

/// Runs `script` in the guest and waits for it: (exit code, output).
fn sh(agent: &mut Agent, script: &str) -> (i64, String) {
    agent.sh(script)
}

/// Starts `script` in the guest in the background.
fn sh_background(agent: &mut Agent, script: &str) {
    let args = json!({"path": "/bin/sh", "arg": ["-c", script]});
    agent
        .call("guest-exec", Some(&args.to_string()))
        .unwrap_or_else(|e| panic!("guest-exec {script:?}: {e}"));
}

/// A guest file's contents, read through the agent.
fn read_file(agent: &mut Agent, path: &str) -> Result<Vec<u8>, String> {
    let h = agent.call(
        "guest-file-open",
        Some(&json!({ "path": path }).to_string()),
    )?;
    let mut data = Vec::new();
    loop {
        let r = agent.call(
            "guest-file-read",
            Some(&json!({"handle": h, "count": 65536}).to_string()),
        )?;
        data.extend(b64(r["buf-b64"].as_str().unwrap_or("")));
        if r["eof"] == true || r["count"] == 0 {
            break;
        }
    }
    agent.call(
        "guest-file-close",
        Some(&json!({ "handle": h }).to_string()),
    )?;
    Ok(data)
}

fn read_text(agent: &mut Agent, path: &str) -> String {
    String::from_utf8_lossy(&read_file(agent, path).unwrap_or_default()).into_owned()
}

/// Waits until the agent answers a ping (it may still be starting, or restarting).
fn wait_agent(agent: &mut Agent, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if agent
            .try_call("guest-ping", None, Duration::from_secs(3))
            .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn call(agent: &mut Agent, command: &str, args: Option<Value>) -> Result<Value, String> {
    agent.call(command, args.map(|a| a.to_string()).as_deref())
}

fn status(agent: &mut Agent) -> String {
    call(agent, "guest-fsfreeze-status", None)
        .map(|v| v.as_str().unwrap_or("").to_owned())
        .unwrap_or_else(|e| e)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn power_commands_in_a_real_vm() {
    if !ready(
        "the VM power test",
        missing_power_prerequisite(&static_qga()),
    ) {
        return;
    }
    let mut c = Checks::new();
    let dir = qga_tests::tempdir::TempDir::new("qga-vm-power").expect("temporary directory");
    let disk = dir.path().join("disk.img");
    make_ext4_image(&disk, &[("qga-vm-init", b"busybox")]);
    let mut vm = Vm::start_in(
        dir,
        &VmOptions {
            disk: Some(disk),
            qmp: true,
            no_reboot: false,
        },
    );
    let mut qmp = vm.qmp();
    assert!(
        vm.wait_console_count("QGA-VM: isa agent pid", 1, Duration::from_secs(120)),
        "boot 1 did not start the agents; console:\n{}",
        vm.console()
    );
    let boot1 = c.start.elapsed();
    let console = vm.console();
    c.check(
        "boot 1: ext4 disk mounted, busybox init",
        console.contains("QGA-VM: disk mounted") && console.contains("QGA-VM: init mode busybox"),
        format!("booted in {:.1} s", boot1.as_secs_f64()),
    );
    let mut a = vm.connect("virtio.sock");
    let mut isa = vm.connect("isa.sock");
    assert!(wait_agent(&mut a, LONG), "virtio agent does not answer");
    assert!(wait_agent(&mut isa, LONG), "isa agent does not answer");

    freeze_and_thaw(&mut c, &vm, &mut a);
    freeze_list(&mut c, &mut a);
    hook_failures(&mut c, &mut a);
    killed_while_frozen(&mut c, &vm, &mut a);
    watchdog(&mut c, &vm, &mut a, &mut isa);
    fstrim(&mut c, &mut a);
    clock(&mut c, &mut a);
    suspend_ram(&mut c, &mut a, &mut qmp);

    // guest-shutdown: a bad mode first (qemu-ga's message, parenthesis missing).
    let r = call(&mut a, "guest-shutdown", Some(json!({"mode": "sleep"})));
    c.check(
        "shutdown with a bad mode",
        r.as_ref().is_err_and(|e| {
            e.contains("mode is invalid (valid values are: halt|powerdown|reboot\"")
        }),
        format!("{r:?}"),
    );

    // Halt through busybox init (SIGUSR1): the CPU stops, QEMU keeps running.
    let r = a.call_no_reply(
        "guest-shutdown",
        Some(&json!({"mode": "halt"}).to_string()),
        Duration::from_secs(3),
    );
    c.check("halt: no reply", r.is_ok(), format!("{r:?}"));
    let halted = vm.wait_console_count("System halted", 1, LONG);
    c.check(
        "halt: busybox init took the request and the kernel halted",
        halted && vm.console().contains("Requesting system halt"),
        "console: \"Requesting system halt\", \"System halted\"",
    );
    let ping = a.try_call("guest-ping", None, Duration::from_secs(3));
    let qemu_status = qmp.status();
    c.check(
        "halt: the agent is gone, QEMU still runs",
        ping.is_err() && qemu_status == "running" && vm.wait_exit(Duration::ZERO).is_none(),
        format!("ping {ping:?}; QEMU status {qemu_status}"),
    );

    // Boot 2.
    qmp.execute("system_reset", None).expect("system_reset");
    let _ = qmp.wait_event("RESET", Duration::from_secs(10));
    assert!(
        vm.wait_console_count("QGA-VM: isa agent pid", 2, Duration::from_secs(120)),
        "boot 2 did not start the agents; console:\n{}",
        vm.console()
    );
    assert!(
        wait_agent(&mut a, LONG),
        "virtio agent does not answer after boot 2"
    );
    // Reboot through a /sbin/reboot program (the newest qemu-ga's path), and the next boot
    // with a shell as PID 1.
    let (code, out) = sh(
        &mut a,
        "mkdir -p /sbin && printf '#!/bin/sh\\necho \"QGA-VM: /sbin/reboot ran\" > /dev/console\\n\
         exec /bin/reboot\\n' > /sbin/reboot && chmod 755 /sbin/reboot && echo shell > \
         /mnt/qga-vm-init && sync",
    );
    assert_eq!(code, 0, "{out}");
    let r = a.call_no_reply(
        "guest-shutdown",
        Some(&json!({"mode": "reboot"}).to_string()),
        Duration::from_secs(3),
    );
    c.check("reboot: no reply", r.is_ok(), format!("{r:?}"));
    let reset = qmp.wait_event("RESET", LONG);
    c.check(
        "reboot: /sbin/reboot ran, QEMU saw a guest reset",
        reset
            .as_ref()
            .is_some_and(|e| e["data"]["reason"] == "guest-reset")
            && vm.console().contains("QGA-VM: /sbin/reboot ran"),
        format!("{reset:?}"),
    );

    // Boot 3: a shell as PID 1, nothing to ask: reboot(2).
    assert!(
        vm.wait_console_count("QGA-VM: init mode shell", 1, Duration::from_secs(120))
            && vm.wait_console_count("QGA-VM: started", 3, Duration::from_secs(60)),
        "boot 3 did not start; console:\n{}",
        vm.console()
    );
    assert!(
        wait_agent(&mut a, LONG),
        "virtio agent does not answer after boot 3"
    );
    let r = a.call_no_reply("guest-shutdown", None, Duration::from_secs(3));
    c.check("powerdown: no reply", r.is_ok(), format!("{r:?}"));
    let shutdown = qmp.wait_event("SHUTDOWN", LONG);
    let exit = vm.wait_exit(Duration::from_secs(30));
    c.check(
        "powerdown: reboot(2) powered off, QEMU exited",
        shutdown
            .as_ref()
            .is_some_and(|e| e["data"]["reason"] == "guest-shutdown")
            && exit.is_some(),
        format!("{shutdown:?}, QEMU exit {exit:?}"),
    );

    eprintln!(
        "VM power test: {} checks passed, {} failed, {:.1} s in all",
        c.passed,
        c.failed.len(),
        c.start.elapsed().as_secs_f64()
    );
    if !c.failed.is_empty() {
        eprintln!("console:\n{}", vm.console());
    }
    assert!(c.failed.is_empty(), "failed checks: {:?}", c.failed);
}

/// Freeze, a write that blocks until the thaw, the hook's calls.
fn freeze_and_thaw(c: &mut Checks, vm: &Vm, a: &mut Agent) {
    c.check("status before freezing", status(a) == "thawed", status(a));
    // A writer that starts once the agent is frozen.
    sh_background(
        a,
        "while [ ! -e /run/qga-virtio/qga.state.isfrozen ]; do usleep 20000; done; sleep 1; \
         echo 'QGA-VM: write started' > /dev/console; echo x > /mnt/data/f; sync; \
         echo 'QGA-VM: write done' > /dev/console",
    );
    let n = call(a, "guest-fsfreeze-freeze", None);
    // /mnt and its bind mount /bind are one filesystem: frozen through /bind (last mounted),
    // EBUSY on /mnt, counted once.
    c.check(
        "freeze: one filesystem (ext4 on /mnt, bind-mounted on /bind)",
        n == Ok(json!(1)),
        format!("{n:?}"),
    );
    c.check("status while frozen", status(a) == "frozen", status(a));
    let t = call(a, "guest-get-time", None);
    c.check(
        "other commands are disabled while frozen",
        t.as_ref()
            .is_err_and(|e| e.contains("has been disabled") && e.contains("frozen")),
        format!("{t:?}"),
    );
    let info = call(a, "guest-info", None).unwrap_or_default();
    let enabled: Vec<&str> = info["supported_commands"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|c| c["enabled"] == true)
                .filter_map(|c| c["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    c.check(
        "only the six freeze-safe commands are enabled",
        enabled.len() == 6,
        enabled.join(" "),
    );
    let started = vm.wait_console_count("QGA-VM: write started", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    c.check(
        "a write in the guest blocks while frozen",
        started && vm.console_count("QGA-VM: write done") == 0,
        "write started, not done after 2 s",
    );
    c.check(
        "the hook ran with freeze",
        vm.console_count("QGA-VM: hook freeze") == 1,
        "console: QGA-VM: hook freeze",
    );
    let n = call(a, "guest-fsfreeze-thaw", None);
    c.check("thaw: one filesystem", n == Ok(json!(1)), format!("{n:?}"));
    let done = vm.wait_console_count("QGA-VM: write done", 1, Duration::from_secs(20));
    c.check(
        "the blocked write completes after the thaw",
        done,
        "console: write done",
    );
    c.check("status after thawing", status(a) == "thawed", status(a));
    let log = read_text(a, "/run/hook.log");
    c.check(
        "the hook ran with freeze, then thaw",
        log == "freeze\nthaw\n",
        format!("{log:?}"),
    );
}

fn freeze_list(c: &mut Checks, a: &mut Agent) {
    let n = call(
        a,
        "guest-fsfreeze-freeze-list",
        Some(json!({"mountpoints": ["/bind"]})),
    );
    let st = status(a);
    let t = call(a, "guest-fsfreeze-thaw", None);
    c.check(
        "freeze-list of the bind mount",
        n == Ok(json!(1)) && st == "frozen" && t == Ok(json!(1)),
        format!("freeze {n:?}, status {st}, thaw {t:?}"),
    );
    let n = call(
        a,
        "guest-fsfreeze-freeze-list",
        Some(json!({"mountpoints": ["/nonexistent", "/", "/mnt/"]})),
    );
    c.check(
        "freeze-list of no local mount: 0, stays thawed",
        n == Ok(json!(0)) && status(a) == "thawed",
        format!("{n:?}"),
    );
    let n = call(
        a,
        "guest-fsfreeze-freeze-list",
        Some(json!({"mountpoints": []})),
    );
    c.check(
        "freeze-list of an empty list",
        n == Ok(json!(0)),
        format!("{n:?}"),
    );
    let n = call(
        a,
        "guest-fsfreeze-freeze-list",
        Some(json!({"mountpoints": ["/mnt"]})),
    );
    let t = call(a, "guest-fsfreeze-thaw", None);
    c.check(
        "freeze-list of /mnt",
        n == Ok(json!(1)) && t == Ok(json!(1)),
        format!("freeze {n:?}, thaw {t:?}"),
    );
    let t = call(a, "guest-fsfreeze-thaw", None);
    c.check(
        "thaw when nothing is frozen: 0",
        t == Ok(json!(0)),
        format!("{t:?}"),
    );
}

fn hook_failures(c: &mut Checks, a: &mut Agent) {
    sh(a, "touch /run/hook-fail-freeze");
    let n = call(a, "guest-fsfreeze-freeze", None);
    c.check(
        "a failing freeze hook fails the freeze, nothing frozen",
        n.as_ref()
            .is_err_and(|e| e.contains("fsfreeze hook has failed with status 7"))
            && status(a) == "thawed",
        format!("{n:?}"),
    );
    sh(a, "rm /run/hook-fail-freeze; touch /run/hook-fail-thaw");
    let n = call(a, "guest-fsfreeze-freeze", None);
    let t = call(a, "guest-fsfreeze-thaw", None);
    let (code, out) = sh(a, "echo w > /mnt/data/h && cat /mnt/data/h");
    c.check(
        "a failing thaw hook fails the thaw, filesystems thawed anyway",
        n == Ok(json!(1))
            && t.as_ref()
                .is_err_and(|e| e.contains("fsfreeze hook has failed with status 7"))
            && status(a) == "thawed"
            && code == 0
            && out == "w\n",
        format!("freeze {n:?}, thaw {t:?}, write after: {code} {out:?}"),
    );
    sh(a, "rm /run/hook-fail-thaw");
}

/// The agent is killed while frozen; busybox init restarts it; it comes back frozen.
fn killed_while_frozen(c: &mut Checks, vm: &Vm, a: &mut Agent) {
    let starts = vm.console_count("QGA-VM: virtio agent pid");
    // Nothing can be run through the agent while it is frozen, so the killer is started before
    // and waits for the marker file (on tmpfs) and a second for the FIFREEZE.
    sh_background(
        a,
        "while [ ! -e /run/qga-virtio/qga.state.isfrozen ]; do usleep 20000; done; sleep 1; \
         kill -9 $(cat /run/qga-virtio.pid); echo 'QGA-VM: killed frozen agent' > /dev/console",
    );
    let n = call(a, "guest-fsfreeze-freeze", None);
    let killed = vm.wait_console_count("QGA-VM: killed frozen agent", 1, Duration::from_secs(20));
    let restarted = vm.wait_console_count(
        "QGA-VM: virtio agent pid",
        starts + 1,
        Duration::from_secs(20),
    );
    let back = wait_agent(a, LONG);
    c.check(
        "agent killed while frozen and restarted by init",
        n == Ok(json!(1)) && killed && restarted && back,
        format!("freeze {n:?}, killed {killed}, restarted {restarted}, answers {back}"),
    );
    let st = status(a);
    let t = call(a, "guest-get-time", None);
    c.check(
        "the restarted agent is frozen",
        st == "frozen"
            && t.is_err()
            && vm
                .console()
                .contains("previous instance appears to have exited with frozen filesystems"),
        format!("status {st}, get-time {t:?}"),
    );
    let n = call(a, "guest-fsfreeze-thaw", None);
    let (code, out) = sh(a, "echo after > /mnt/data/k && cat /mnt/data/k");
    c.check(
        "its thaw thaws the filesystem",
        n == Ok(json!(1)) && status(a) == "thawed" && code == 0 && out == "after\n",
        format!("thaw {n:?}, write after: {code} {out:?}"),
    );
    let log = read_text(a, "/run/qga-virtio.log");
    c.check(
        "its log file was opened at the thaw",
        log.contains("logging re-enabled due to filesystem unfreeze"),
        "qga-virtio.log: logging re-enabled due to filesystem unfreeze",
    );
}

/// The isa agent runs with --fsfreeze-timeout=3.
fn watchdog(c: &mut Checks, vm: &Vm, a: &mut Agent, isa: &mut Agent) {
    let start = Instant::now();
    let n = call(isa, "guest-fsfreeze-freeze", None);
    let st = status(isa);
    sh_background(
        a,
        "echo y > /mnt/data/g; sync; echo 'QGA-VM: watchdog write done' > /dev/console",
    );
    let mut thawed_after = None;
    while start.elapsed() < Duration::from_secs(20) {
        if status(isa) == "thawed" {
            thawed_after = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    c.check(
        "watchdog: frozen, then thawed by itself after about 3 s",
        n == Ok(json!(1))
            && st == "frozen"
            && thawed_after.is_some_and(|t| t >= Duration::from_millis(2500)),
        format!("freeze {n:?}, status {st}, thawed after {thawed_after:?}"),
    );
    let done = vm.wait_console_count("QGA-VM: watchdog write done", 1, Duration::from_secs(20));
    c.check("watchdog: the blocked write completes", done, "console");
    let log = read_text(a, "/run/qga-isa.log");
    let reenabled = log.find("logging re-enabled due to filesystem unfreeze");
    let said = log.find("fsfreeze-timeout (3 s)");
    c.check(
        "watchdog: logged after the thaw",
        matches!((reenabled, said), (Some(r), Some(s)) if s > r),
        log.lines()
            .filter(|l| l.contains("fsfreeze-timeout"))
            .collect::<Vec<_>>()
            .join(" | "),
    );
}

fn fstrim(c: &mut Checks, a: &mut Agent) {
    let r = call(a, "guest-fstrim", None).unwrap_or_else(|e| json!({ "error": e }));
    let paths: Vec<&str> = r["paths"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["path"].as_str()).collect())
        .unwrap_or_default();
    let trimmed: i64 = r["paths"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["trimmed"].as_i64()).sum())
        .unwrap_or(0);
    let all_ok = r["paths"].as_array().is_some_and(|l| {
        l.iter()
            .all(|p| p.get("error").is_none() && p["minimum"] == 0)
    });
    c.check(
        "fstrim: every mount, last mounted first, bytes trimmed",
        paths == ["/bind", "/mnt"] && all_ok && trimmed > 0,
        r.to_string(),
    );
    let r = call(a, "guest-fstrim", Some(json!({"minimum": -1})))
        .unwrap_or_else(|e| json!({ "error": e }));
    let errors: Vec<&str> = r["paths"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["error"].as_str()).collect())
        .unwrap_or_default();
    c.check(
        "fstrim with an impossible minimum: per-path errors",
        errors.len() == 2 && errors.iter().all(|e| e.starts_with("failed to trim: ")),
        r.to_string(),
    );
}

fn clock(c: &mut Checks, a: &mut Agent) {
    let host = now_ns();
    let t0 = call(a, "guest-get-time", None)
        .ok()
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    c.check(
        "get-time: microseconds in ns, close to the host's clock",
        t0 % 1000 == 0 && (t0 - host).abs() < 120_000_000_000,
        format!("guest {t0}, host {host}"),
    );
    // An hour ahead: the system clock and the RTC (hwclock -w, without hwclock).
    let target = (t0 / 1000 + 3_600_000_000) * 1000;
    let r = call(a, "guest-set-time", Some(json!({ "time": target })));
    let t1 = call(a, "guest-get-time", None)
        .ok()
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let (_, rtc_text) = sh(a, "cat /sys/class/rtc/rtc0/since_epoch");
    let rtc: i64 = rtc_text.trim().parse().unwrap_or(0);
    c.check(
        "set-time sets the clock and the RTC",
        r == Ok(json!({}))
            && (t1 - target).abs() < 10_000_000_000
            && (rtc - target / 1_000_000_000).abs() < 10,
        format!("{r:?}; clock {t1}, RTC {rtc_text:?} s, wanted {target}"),
    );
    // Move the system clock away (busybox date), then set it from the RTC (hwclock -s).
    sh(a, "date -s @1000000000 > /dev/null");
    let r = call(a, "guest-set-time", None);
    let t2 = call(a, "guest-get-time", None)
        .ok()
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    c.check(
        "set-time without a time takes the RTC's",
        r == Ok(json!({})) && (t2 - target).abs() < 15_000_000_000,
        format!("{r:?}; clock {t2}, wanted about {target}"),
    );
    let r = call(a, "guest-set-time", Some(json!({"time": 1})));
    c.check(
        "set-time before the boot time: the kernel's EINVAL, as qemu-ga",
        r.as_ref()
            .is_err_and(|e| e.contains("Failed to set time to guest: Invalid argument")),
        format!("{r:?}"),
    );
    let r = call(
        a,
        "guest-set-time",
        Some(json!({"time": 4_102_444_800_000_000_000i64})),
    );
    c.check(
        "set-time in 2100: qemu-ga's Invalid time",
        r.as_ref().is_err_and(|e| e.contains("Invalid time")),
        format!("{r:?}"),
    );
    // Back to the host's time.
    let r = call(
        a,
        "guest-set-time",
        Some(json!({ "time": now_ns() / 1000 * 1000 })),
    );
    c.check(
        "set-time back to the host's time",
        r == Ok(json!({})),
        format!("{r:?}"),
    );
}

fn suspend_ram(c: &mut Checks, a: &mut Agent, qmp: &mut qga_tests::vm::Qmp) {
    let states = read_text(a, "/sys/power/state");
    let mem_sleep = read_text(a, "/sys/power/mem_sleep");
    if !states.split_whitespace().any(|s| s == "mem") {
        let r = a.call_no_reply("guest-suspend-ram", None, Duration::from_secs(5));
        c.check(
            "suspend-ram: the guest kernel has no S3: qemu-ga's error",
            r.as_ref().is_err_and(|e| {
                e.contains("the requested suspend mode is not supported by the guest")
            }),
            format!("/sys/power/state {states:?}: {r:?}"),
        );
        return;
    }
    if !mem_sleep.contains("[deep]") {
        // s2idle only: nothing in this VM would wake the guest again.
        c.check(
            "suspend-ram: skipped (s2idle only)",
            true,
            format!("mem_sleep {mem_sleep:?}"),
        );
        return;
    }
    let r = a.call_no_reply("guest-suspend-ram", None, Duration::from_secs(3));
    let suspended = qmp.wait_event("SUSPEND", Duration::from_secs(30));
    let state = qmp.status();
    c.check(
        "suspend-ram: no reply, the guest is suspended to RAM",
        r.is_ok() && suspended.is_some() && state == "suspended",
        format!("{r:?}; QEMU status {state}"),
    );
    let woke = qmp.execute("system_wakeup", None);
    let wakeup = qmp.wait_event("WAKEUP", Duration::from_secs(30));
    let back = wait_agent(a, LONG);
    c.check(
        "suspend-ram: woken up, the agent answers",
        woke.is_ok() && wakeup.is_some() && back,
        format!("system_wakeup {woke:?}, agent answers {back}"),
    );
}
