//! The two data threads. The sending thread reads the TUN device, has the
//! core seal each packet and sends the trains; the receiving thread
//! receives from every path socket, has the core open each datagram,
//! writes what it releases to the TUN device and runs the core's timers.
//! Each blocks in `poll` on its own descriptors, so a packet in either
//! direction is handled by the thread that was waiting for it: no hop
//! between threads, and the system calls of one direction run beside the
//! other's.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::paths_to_tun::PathsToTun;
use super::shared_core::{lock, Core};
use super::tun_device::TunDevice;
use super::tun_to_paths::TunToPaths;
use crate::io::kernel_offloads::KernelOffloads;

/// TUN reads per wake-up before the core's timers get a turn (each may be
/// a 64 KB super-packet).
const TUN_READS: usize = 32;
/// A deadline the sending thread brings forward concerns the receiving
/// thread (which runs the timers) only when it is due this much before the
/// one that thread waits for. None of the core's timers needs better.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// What the threads and the control side share.
pub struct Shared {
    pub core: Mutex<Core>,
    /// The sending direction's buffers (the sending thread's; locked
    /// apart from the core so that status can read its counters).
    outbound: Mutex<TunToPaths>,
    pub tun: TunDevice,
    pub offloads: KernelOffloads,
    stop: AtomicBool,
    send_wake: EventFd,
    receive_wake: EventFd,
    /// TUN writes that were joined super-packets (the receiving thread's
    /// count, for status).
    pub super_packets_written: AtomicU64,
}

impl Shared {
    pub fn new(
        core: Core,
        outbound: TunToPaths,
        tun: TunDevice,
        offloads: KernelOffloads,
    ) -> io::Result<Shared> {
        let wake = || EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC);
        Ok(Shared {
            core: Mutex::new(core),
            outbound: Mutex::new(outbound),
            tun,
            offloads,
            stop: AtomicBool::new(false),
            send_wake: wake()?,
            receive_wake: wake()?,
            super_packets_written: AtomicU64::new(0),
        })
    }

    /// Wakes the receiving thread: the sockets or the core's timers changed.
    pub fn poke_receiver(&self) {
        let _ = self.receive_wake.write(1);
    }

    /// Asks both threads to return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.send_wake.write(1);
        let _ = self.receive_wake.write(1);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The sending direction's buffers and counters.
    pub fn outbound(&self) -> MutexGuard<'_, TunToPaths> {
        self.outbound
            .lock()
            .expect("a data thread panicked while sending")
    }
}

/// The sending thread: TUN → core → path sockets, until stopped.
pub fn send_loop(shared: &Shared) -> io::Result<()> {
    // A core deadline this thread brought forward that the receiving
    // thread (which runs the timers) was not told of yet.
    let mut untold: Option<Instant> = None;
    loop {
        if shared.stopping() {
            return Ok(());
        }
        let mut fds = [
            PollFd::new(shared.tun.fd(), PollFlags::POLLIN),
            PollFd::new(shared.send_wake.as_fd(), PollFlags::POLLIN),
        ];
        wait(&mut fds, timeout_until(untold))?;
        if fds[1].any().unwrap_or(false) {
            let _ = shared.send_wake.read();
        }
        if let Some(due) = untold {
            if Instant::now() >= due {
                untold = None;
                tell_receiver(shared, due);
            }
        }
        if let Some(due) = send_burst(shared)? {
            untold = Some(untold.map_or(due, |u| u.min(due)));
        }
    }
}

/// Wakes the receiving thread for deadline `due` unless it already waits
/// for one as early (it re-arms whenever it wakes, which a reply to what
/// was sent usually makes it do long before `due`).
fn tell_receiver(shared: &Shared, due: Instant) {
    let mut core = lock(&shared.core);
    if core.timer_armed.is_none_or(|armed| due + TIMER_SLACK < armed) {
        core.timer_armed = Some(due);
        drop(core);
        shared.poke_receiver();
    }
}

/// Reads what the TUN device has (up to [`TUN_READS`] reads), seals it
/// and sends the trains. Returns the core's next deadline when sending
/// brought it before the one the receiving thread waits for: the caller
/// tells that thread when the deadline comes (not now: a wake-up of the
/// other thread per packet would cost more than the sending).
fn send_burst(shared: &Shared) -> io::Result<Option<Instant>> {
    let mut outbound = shared.outbound();
    let mut read = false;
    let mut sockets = None;
    for _ in 0..TUN_READS {
        let n = match shared.tun.read_now(outbound.read_buffer()) {
            Some(r) => r?,
            None => break,
        };
        read = true;
        if let Some(s) = outbound.send_read(&shared.core, n) {
            sockets = Some(s);
        }
    }
    if !read {
        return Ok(None);
    }
    if let Some(sockets) = sockets {
        outbound.flush(&sockets);
    }
    let mut core = lock(&shared.core);
    outbound.report_too_big(&mut core.tunnel);
    // Handshakes the packets started, say.
    let now = Instant::now();
    core.flush_control(now);
    let due = core.tunnel.poll_timeout();
    Ok(due.filter(|&due| core.timer_armed.is_none_or(|armed| due + TIMER_SLACK < armed)))
}

/// The receiving thread: path sockets → core → TUN, and the core's
/// timers, until stopped.
pub fn receive_loop(shared: &Shared) -> io::Result<()> {
    let mut inbound = PathsToTun::new(shared.offloads.tun);
    let mut rotate = 0usize;
    loop {
        if shared.stopping() {
            return Ok(());
        }
        let (sockets, due) = {
            let mut core = lock(&shared.core);
            let now = Instant::now();
            core.housekeeping(now);
            inbound.deliver_released(&mut core.tunnel, &shared.tun);
            let due = core.tunnel.poll_timeout();
            core.timer_armed = due;
            (core.sockets.clone(), due)
        };
        shared
            .super_packets_written
            .store(inbound.super_packets(), Ordering::Relaxed);
        let timeout = timeout_until(due);
        let mut fds = Vec::with_capacity(sockets.len() + 1);
        fds.push(PollFd::new(shared.receive_wake.as_fd(), PollFlags::POLLIN));
        fds.extend(
            sockets
                .values()
                .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN)),
        );
        wait(&mut fds, timeout)?;
        if fds[0].any().unwrap_or(false) {
            let _ = shared.receive_wake.read();
        }
        // Starting one further each time: no socket starves the others.
        let n = sockets.len().max(1);
        rotate = rotate.wrapping_add(1);
        for (i, (id, socket)) in sockets
            .iter()
            .enumerate()
            .cycle()
            .skip(rotate % n)
            .take(sockets.len())
        {
            if !fds[i + 1].any().unwrap_or(false) {
                continue;
            }
            inbound.drain(&shared.core, socket, *id, &shared.tun);
        }
    }
}

/// A `poll` timeout until `due` (none: wait for a descriptor), rounded
/// up to whole milliseconds: waking early would only spin.
fn timeout_until(due: Option<Instant>) -> PollTimeout {
    let Some(due) = due else {
        return PollTimeout::NONE;
    };
    let us = due.saturating_duration_since(Instant::now()).as_micros();
    PollTimeout::try_from(us.div_ceil(1000).min(60_000) as i32).unwrap_or(PollTimeout::NONE)
}

/// `poll`, retried when a signal interrupts it.
fn wait(fds: &mut [PollFd<'_>], timeout: PollTimeout) -> io::Result<()> {
    loop {
        match poll(fds, timeout) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::new(io::Error::from(e).kind(), format!("poll: {e}"))),
        }
    }
}
