//! SIGINT, SIGTERM and SIGHUP end a run without leaving partial outputs:
//! the handler only writes the signal's number to a pipe (all a handler
//! may safely do); a watcher thread reads it, removes every partial output
//! the run holds ([`umbra::output::remove_live`]) and exits 128 + the
//! signal, as a shell reports a process killed by it.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::process::Signal;

/// Installs the handlers and starts the watcher. Without a pipe or a
/// handler, signals keep their default action (the next run's sweep then
/// removes what was left).
pub(crate) fn clean_up_on_signals() {
    let Ok((reader, writer)) = rustix::pipe::pipe() else {
        return;
    };
    // The write end lives as long as the process: the handlers use it.
    let raw = writer.as_raw_fd();
    std::mem::forget(writer);
    for signal in [Signal::INT, Signal::TERM, Signal::HUP] {
        let number = signal.as_raw();
        // SAFETY: the action only calls write(2) on a descriptor that is
        // never closed, which is async-signal-safe; it allocates nothing,
        // takes no lock and does not unwind.
        let registered = unsafe {
            signal_hook_registry::register(number, move || {
                let fd = BorrowedFd::borrow_raw(raw);
                let _ = rustix::io::write(fd, &[number as u8]);
            })
        };
        if registered.is_err() {
            return;
        }
    }
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        if let Ok(1) = rustix::io::read(&reader, &mut byte) {
            umbra::output::remove_live();
            eprintln!(
                "umbra: interrupted (signal {}): partial outputs removed",
                byte[0]
            );
            std::process::exit(128 + i32::from(byte[0]));
        }
    });
}
