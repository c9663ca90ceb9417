//! Ctrl-C during `up`. SIGINT is caught, not left to end the runner where it stands: it is
//! forwarded to the processes the runner waits for (the step, the head starts), so a signal
//! sent to the runner alone ends them too, and `up` then ends as after a failed step: the
//! state file keeps the last good context, the lock file is removed, and it says how to go on.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The processes a signal is forwarded to; 0 is a free slot. A fixed array, because the
/// handler may only make async-signal-safe calls: it reads atomics and calls `kill`.
static WATCHED: [AtomicI32; 16] = [const { AtomicI32::new(0) }; 16];

extern "C" fn forward(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
    for slot in &WATCHED {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe; the pid is a child this runner has not reaped.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// From now on SIGINT is forwarded and recorded (see [`received`]). SA_RESTART: the wait
/// for a step goes on after the handler, until the step ends.
pub fn catch() {
    // SAFETY: a zeroed sigaction is valid; the handler makes only async-signal-safe calls.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

/// Whether SIGINT has arrived since [`catch`].
pub fn received() -> bool {
    RECEIVED.load(Ordering::SeqCst) != 0
}

/// A child a signal is forwarded to while this lives. A child started while every slot is
/// taken is not watched: a terminal's Ctrl-C still reaches it, as it reaches the whole
/// foreground process group.
pub struct Watched(Option<usize>);

pub fn watch(pid: u32) -> Watched {
    let Ok(pid) = i32::try_from(pid) else { return Watched(None) };
    Watched(WATCHED.iter().position(|slot| slot.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst).is_ok()))
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            WATCHED[slot].store(0, Ordering::SeqCst);
        }
    }
}

/// `up` stopped by SIGINT: exit code 130, as a shell gives a command Ctrl-C ended.
#[derive(Debug)]
pub struct Interrupted {
    pub step: String,
}

pub const INTERRUPTED_EXIT: u8 = 128 + libc::SIGINT as u8;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted during {}; nothing was lost; run `groundup up` to resume", self.step)
    }
}

impl std::error::Error for Interrupted {}
