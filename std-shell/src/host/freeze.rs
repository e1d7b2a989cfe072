//! Frozen state: `guest-fsfreeze-freeze`/`-freeze-list`/`-thaw` as qemu-ga's
//! `qmp_guest_fsfreeze_freeze_list` and `qmp_guest_fsfreeze_thaw` run them (hook, marker file,
//! logging, counts), and the freeze watchdog.
//!
//! # The watchdog (beyond qemu-ga)
//!
//! With `--fsfreeze-timeout=SECS` (config key `fsfreeze-timeout`), filesystems frozen for longer
//! than that are thawed by the agent itself: a host that froze the guest and then died, hung or
//! lost the connection can no longer leave it frozen for good (writers blocked, services timing
//! out). The thaw goes through the same path as `guest-fsfreeze-thaw` (FITHAW on every mount,
//! leaving frozen state: the `qga.state.isfrozen` marker is removed and logging comes back, then
//! the thaw hook), and is logged afterwards as a warning. The time counts from the freeze; an
//! agent restarted while frozen counts from the marker file's modification time (written just
//! before the filesystems were frozen), so a restart does not extend the freeze. Off by default,
//! as qemu-ga has no such limit.
//!
//! The watchdog is a thread waiting on a condition variable; the state it shares with the
//! protocol loop sits behind one mutex, and [`Freezer::is_frozen`] reads a lock-free copy so the
//! loop never waits for a thaw hook the watchdog is running. The protocol engine's own frozen
//! flag is brought in line with [`Freezer::is_frozen`] by the daemon before each input.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::Lifecycle;
use super::fsfreeze::{self, HOOK_TIMEOUT};
use super::mountinfo;
use crate::logging::warning;

/// How soon the watchdog tries again when its thaw failed (the mount table could not be read).
const RETRY: Duration = Duration::from_secs(5);

/// True while this agent is in frozen state (for code outside the protocol loop, such as the
/// shutdown fallback, which must not `sync()` into frozen filesystems).
static FROZEN: AtomicBool = AtomicBool::new(false);

/// True while the agent is in frozen state.
pub fn frozen_now() -> bool {
    FROZEN.load(Ordering::SeqCst)
}

/// FIFREEZE over a mount list (optionally only the wanted mount points).
type FreezeFn = fn(&[mountinfo::MountEntry], Option<&[Vec<u8>]>) -> Result<i64, String>;

/// The kernel operations (replaced in tests, which must never freeze or thaw the machine
/// running them).
#[derive(Clone, Copy)]
struct KernelOps {
    mounts: fn() -> Result<Vec<mountinfo::MountEntry>, String>,
    freeze: FreezeFn,
    thaw: fn() -> Result<i64, String>,
}

const KERNEL: KernelOps = KernelOps {
    mounts: mountinfo::mount_list,
    freeze: fsfreeze::freeze,
    thaw: fsfreeze::thaw,
};

struct State {
    ops: KernelOps,
    life: Lifecycle,
    hook: Option<OsString>,
    /// The watchdog's limit, if enabled.
    timeout: Option<Duration>,
    /// When the watchdog thaws (only while frozen with a limit).
    deadline: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Lock-free copy of `state.life.is_frozen()`.
    frozen: AtomicBool,
}

impl Shared {
    fn set_frozen(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
        FROZEN.store(frozen, Ordering::SeqCst);
    }
}

/// The frozen state and its watchdog.
pub struct Freezer {
    shared: Arc<Shared>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Freezer {
    /// Takes over `life` (frozen or not, from the marker file) and starts the watchdog thread
    /// when `timeout` is given.
    pub fn new(life: Lifecycle, hook: Option<OsString>, timeout: Option<Duration>) -> Freezer {
        Self::with_ops(KERNEL, life, hook, timeout)
    }

    fn with_ops(
        ops: KernelOps,
        life: Lifecycle,
        hook: Option<OsString>,
        timeout: Option<Duration>,
    ) -> Freezer {
        let timeout = timeout.filter(|t| !t.is_zero());
        let deadline = match timeout {
            Some(t) if life.is_frozen() => Some(restart_deadline(&life, t)),
            _ => None,
        };
        FROZEN.store(life.is_frozen(), Ordering::SeqCst);
        let shared = Arc::new(Shared {
            frozen: AtomicBool::new(life.is_frozen()),
            state: Mutex::new(State {
                ops,
                life,
                hook,
                timeout,
                deadline,
            }),
            wake: Condvar::new(),
        });
        if timeout.is_some() {
            let for_thread = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("fsfreeze-watchdog".into())
                .spawn(move || watchdog(&for_thread));
            if let Err(e) = spawned {
                warning!("fsfreeze-timeout disabled: cannot start its thread: {e}");
            }
        }
        Freezer { shared }
    }

    /// True while in frozen state.
    pub fn is_frozen(&self) -> bool {
        self.shared.frozen.load(Ordering::SeqCst)
    }

    /// Runs `f` on the lifecycle (pid file hand-over at exit).
    pub fn with_life<T>(&self, f: impl FnOnce(&mut Lifecycle) -> T) -> T {
        f(&mut lock(&self.shared).life)
    }

    /// `guest-fsfreeze-freeze` (`wanted` absent) and `-freeze-list`.
    ///
    /// # Errors
    ///
    /// qemu-ga's messages: the freeze hook's, the mount table's, `failed to open/freeze <dir>`
    /// (everything is thawed again, and the thaw hook runs, before the error is returned).
    pub fn freeze(&self, wanted: Option<&[Vec<u8>]>) -> Result<i64, String> {
        let mut st = lock(&self.shared);
        fsfreeze::run_hook(st.hook.as_deref(), "freeze", HOOK_TIMEOUT)?;
        let mounts = (st.ops.mounts)()?;
        // The agent must not block itself on a write to a frozen filesystem.
        st.life.enter_frozen();
        self.shared.set_frozen(true);
        match (st.ops.freeze)(&mounts, wanted) {
            Ok(0) => {
                // Nothing frozen: qemu-ga leaves frozen state again (and runs no thaw hook).
                st.life.leave_frozen();
                self.shared.set_frozen(false);
                Ok(0)
            }
            Ok(n) => {
                st.deadline = st.timeout.map(|t| Instant::now() + t);
                self.shared.wake.notify_all();
                Ok(n)
            }
            Err(e) => {
                // qemu-ga calls qmp_guest_fsfreeze_thaw(NULL): its errors are dropped and the
                // freeze error is the one reported.
                let _ = thaw_locked(&self.shared, &mut st);
                Err(e)
            }
        }
    }

    /// `guest-fsfreeze-thaw`.
    ///
    /// # Errors
    ///
    /// The mount table's message (frozen state is kept), or the thaw hook's (after the thaw).
    pub fn thaw(&self) -> Result<i64, String> {
        let mut st = lock(&self.shared);
        let r = thaw_locked(&self.shared, &mut st);
        self.shared.wake.notify_all();
        r
    }

    /// At exit: a still-frozen agent thaws (qemu-ga's cleanup).
    pub fn thaw_at_exit(&self) {
        if self.is_frozen() {
            let _ = self.thaw();
        }
    }
}

/// The deadline of an agent that starts frozen: from the marker file's time.
fn restart_deadline(life: &Lifecycle, timeout: Duration) -> Instant {
    let frozen_for = std::fs::metadata(&life.state.isfrozen)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    Instant::now() + timeout.saturating_sub(frozen_for)
}

/// qemu-ga's `qmp_guest_fsfreeze_thaw`: thaw, leave frozen state, then the thaw hook.
fn thaw_locked(shared: &Shared, st: &mut State) -> Result<i64, String> {
    let n = (st.ops.thaw)()?;
    st.life.leave_frozen();
    shared.set_frozen(false);
    st.deadline = None;
    fsfreeze::run_hook(st.hook.as_deref(), "thaw", HOOK_TIMEOUT)?;
    Ok(n)
}

/// The watchdog thread: sleeps until the deadline (re-armed or cleared by the protocol loop
/// through the condition variable), then thaws.
fn watchdog(shared: &Shared) {
    let mut st = lock(shared);
    loop {
        let Some(deadline) = st.deadline else {
            st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let now = Instant::now();
        if now < deadline {
            st = shared
                .wake
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        st.deadline = None;
        if !st.life.is_frozen() {
            continue;
        }
        let limit = st.timeout.unwrap_or_default().as_secs();
        match thaw_locked(shared, &mut st) {
            Ok(n) => warning!(
                "filesystems stayed frozen longer than fsfreeze-timeout ({limit} s): thawed \
                 them ({n} thawed)"
            ),
            Err(e) if st.life.is_frozen() => {
                // Logging is still off: nothing can be said until the thaw works.
                let _ = e;
                st.deadline = Some(Instant::now() + RETRY);
            }
            Err(e) => warning!(
                "filesystems stayed frozen longer than fsfreeze-timeout ({limit} s): thawed \
                 them; {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateFiles;

    fn life_of(name: &str, frozen: bool) -> (Lifecycle, std::path::PathBuf) {
        life(name, frozen)
    }

    fn life(name: &str, frozen: bool) -> (Lifecycle, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!("qga-freezer-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let state = StateFiles::new(d.as_os_str());
        if frozen {
            state.create_isfrozen();
        }
        (Lifecycle::new(state, frozen), d)
    }

    use crate::host::mountinfo::MountEntry;

    // Stand-ins for the kernel: two mounts; "freezing" freezes those listed (or all), a thaw
    // reports 2.
    fn fake_mounts() -> Result<Vec<MountEntry>, String> {
        Ok(["/", "/data"]
            .iter()
            .map(|d| MountEntry {
                dir: d.as_bytes().to_vec(),
                fstype: b"ext4".to_vec(),
                major: 253,
                minor: 0,
            })
            .collect())
    }
    fn fake_freeze(m: &[MountEntry], wanted: Option<&[Vec<u8>]>) -> Result<i64, String> {
        let n = m
            .iter()
            .filter(|m| wanted.is_none_or(|w| w.contains(&m.dir)))
            .count();
        if wanted.is_some_and(|w| w.contains(&b"/fail".to_vec())) {
            return Err("failed to freeze /data: Input/output error".into());
        }
        Ok(n as i64)
    }
    fn fake_thaw() -> Result<i64, String> {
        Ok(2)
    }
    fn unreadable_mounts() -> Result<Vec<MountEntry>, String> {
        Err("failed to open mtab file: '/proc/self/mounts'".into())
    }
    const FAKE: KernelOps = KernelOps {
        mounts: fake_mounts,
        freeze: fake_freeze,
        thaw: fake_thaw,
    };

    fn freezer(life: Lifecycle, hook: Option<&str>, timeout: Option<Duration>) -> Freezer {
        Freezer::with_ops(FAKE, life, hook.map(OsString::from), timeout)
    }

    #[test]
    fn freeze_list_of_nothing_stays_thawed() {
        let (life, d) = life("none", false);
        let f = freezer(life, None, None);
        assert_eq!(f.freeze(Some(&[b"/nonexistent-mount".to_vec()])), Ok(0));
        assert!(!f.is_frozen());
        assert!(!d.join("qga.state.isfrozen").exists());
    }

    #[test]
    fn freeze_then_thaw_with_the_marker_file() {
        let (life, d) = life("cycle", false);
        let f = freezer(life, None, None);
        assert_eq!(f.freeze(Some(&[b"/data".to_vec()])), Ok(1));
        assert!(f.is_frozen());
        assert!(d.join("qga.state.isfrozen").exists());
        assert_eq!(f.thaw(), Ok(2));
        assert!(!f.is_frozen());
        assert!(!d.join("qga.state.isfrozen").exists());
    }

    #[test]
    fn failed_freeze_thaws_and_reports_the_freeze_error() {
        let (life, d) = life("partial", false);
        // The thaw hook fails too: the freeze error is still the one reported.
        let hook = d.join("hook");
        crate::host::write_script(&hook, "#!/bin/sh\n[ \"$1\" = thaw ] && exit 5\nexit 0\n");
        let f = freezer(life, hook.to_str(), None);
        assert_eq!(
            f.freeze(Some(&[b"/data".to_vec(), b"/fail".to_vec()])),
            Err("failed to freeze /data: Input/output error".to_owned())
        );
        assert!(!f.is_frozen());
        assert!(!d.join("qga.state.isfrozen").exists());
    }

    #[test]
    fn thaw_without_a_mount_table_stays_frozen() {
        let (life, d) = life("nomounts", true);
        let ops = KernelOps {
            thaw: || Err("failed to open mtab file: '/proc/self/mounts'".into()),
            ..FAKE
        };
        let f = Freezer::with_ops(ops, life, None, None);
        assert!(f.thaw().is_err());
        assert!(f.is_frozen());
        assert!(d.join("qga.state.isfrozen").exists());
        let (life, _d) = life_of("nomounts2", false);
        let ops = KernelOps {
            mounts: unreadable_mounts,
            ..FAKE
        };
        let f = Freezer::with_ops(ops, life, None, None);
        assert_eq!(
            f.freeze(None),
            Err("failed to open mtab file: '/proc/self/mounts'".to_owned())
        );
        assert!(!f.is_frozen());
    }

    #[test]
    fn restarted_frozen_agent_thaws_on_request() {
        let (life, d) = life("restart", true);
        let f = freezer(life, None, None);
        assert!(f.is_frozen());
        assert_eq!(f.thaw(), Ok(2));
        assert!(!f.is_frozen());
        assert!(!d.join("qga.state.isfrozen").exists());
    }

    #[test]
    fn hook_failure_on_thaw_still_thaws() {
        let (life, d) = life("hookfail", true);
        let f = freezer(life, Some("/bin/false"), None);
        assert_eq!(
            f.thaw(),
            Err("fsfreeze hook has failed with status 1".to_owned())
        );
        assert!(!f.is_frozen());
        assert!(!d.join("qga.state.isfrozen").exists());
    }

    #[test]
    fn freeze_hook_failure_freezes_nothing() {
        let (life, d) = life("hookfreeze", false);
        let f = freezer(life, Some("/bin/false"), None);
        assert_eq!(
            f.freeze(None),
            Err("fsfreeze hook has failed with status 1".to_owned())
        );
        assert!(!f.is_frozen());
        assert!(!d.join("qga.state.isfrozen").exists());
    }

    #[test]
    fn watchdog_thaws_a_restarted_agent_counting_from_the_marker() {
        let (life, d) = life("watchdog", true);
        let marker = d.join("qga.state.isfrozen");
        // Frozen 10 s ago with a limit of 11 s: about a second is left.
        let ten_ago = SystemTime::now() - Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&marker)
            .unwrap()
            .set_modified(ten_ago)
            .unwrap();
        let start = Instant::now();
        let f = freezer(life, None, Some(Duration::from_secs(11)));
        assert!(f.is_frozen());
        while f.is_frozen() {
            assert!(start.elapsed() < Duration::from_secs(5), "no auto-thaw");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(start.elapsed() >= Duration::from_millis(500));
        // The state follows: the marker is gone.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!marker.exists());
    }

    #[test]
    fn watchdog_thaws_after_a_freeze() {
        let (life, d) = life("watchdog-fresh", false);
        let f = freezer(life, None, Some(Duration::from_secs(1)));
        let start = Instant::now();
        assert_eq!(f.freeze(None), Ok(2));
        assert!(f.is_frozen());
        while f.is_frozen() {
            assert!(start.elapsed() < Duration::from_secs(5), "no auto-thaw");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(start.elapsed() >= Duration::from_millis(900));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!d.join("qga.state.isfrozen").exists());
        // A new freeze arms it again.
        assert_eq!(f.freeze(Some(&[b"/".to_vec()])), Ok(1));
        assert!(f.is_frozen());
        assert_eq!(f.thaw(), Ok(2));
    }

    #[test]
    fn watchdog_is_disarmed_by_a_thaw() {
        let (life, _d) = life("disarm", true);
        let f = freezer(life, None, Some(Duration::from_secs(3600)));
        assert!(f.is_frozen());
        assert_eq!(f.thaw(), Ok(2));
        assert!(lock(&f.shared).deadline.is_none());
    }
}
