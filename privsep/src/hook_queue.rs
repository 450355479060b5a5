//! Which hook starts when: the parent runs hooks as root on the worker's
//! request, so a compromised worker must not make it spawn processes
//! without bound. At most one hook runs per path (a path's hooks run in the
//! order they were asked for), at most [`HookLimits::concurrent`] run at
//! once, at most [`HookLimits::per_second`] start in any second, and at
//! most [`HookLimits::queued`] wait (a path at most
//! [`HookLimits::queued_per_path`]); what does not fit is dropped.
//!
//! Plain state, no clock and no processes: the caller passes the time and
//! reports when a hook finished ([`crate::hooks::HookScheduler`] does).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Hooks that run one at a time, in order: a client path's, or the
/// tunnel's own (`tunnel_up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKey {
    Tunnel,
    Path(u8),
}

#[derive(Debug, Clone, Copy)]
pub struct HookLimits {
    /// Hooks running at once.
    pub concurrent: usize,
    /// Hooks started in any one second.
    pub per_second: usize,
    /// Hooks waiting, in all.
    pub queued: usize,
    /// Hooks waiting for one key.
    pub queued_per_path: usize,
}

impl Default for HookLimits {
    /// Enough for every path of a client flapping at once (32 paths, a
    /// hook each way), far below what would hurt the host.
    fn default() -> Self {
        HookLimits {
            concurrent: 4,
            per_second: 10,
            queued: 64,
            queued_per_path: 4,
        }
    }
}

/// Why a hook was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    QueueFull,
    PathQueueFull,
}

/// The waiting and running hooks.
#[derive(Debug)]
pub struct HookQueue<J> {
    limits: HookLimits,
    /// Waiting, oldest first (per key, in the order asked for).
    waiting: VecDeque<(HookKey, J)>,
    running: HashSet<HookKey>,
    /// Start times within the last second (at most `per_second`).
    started: VecDeque<Instant>,
}

impl<J> HookQueue<J> {
    pub fn new(limits: HookLimits) -> HookQueue<J> {
        HookQueue {
            limits,
            waiting: VecDeque::new(),
            running: HashSet::new(),
            started: VecDeque::new(),
        }
    }

    /// Queues a hook; refuses it when a queue is full.
    pub fn submit(&mut self, key: HookKey, job: J) -> Result<(), Dropped> {
        if self.waiting.len() >= self.limits.queued {
            return Err(Dropped::QueueFull);
        }
        if self.waiting.iter().filter(|(k, _)| *k == key).count() >= self.limits.queued_per_path {
            return Err(Dropped::PathQueueFull);
        }
        self.waiting.push_back((key, job));
        Ok(())
    }

    /// The hook of `key` finished: the next of that key may start.
    pub fn finished(&mut self, key: HookKey) {
        self.running.remove(&key);
    }

    fn forget_old_starts(&mut self, now: Instant) {
        while self
            .started
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            self.started.pop_front();
        }
    }

    /// The next hook to start now, if any may: the oldest waiting one whose
    /// key has none running, within the concurrency and rate limits.
    pub fn next_start(&mut self, now: Instant) -> Option<(HookKey, J)> {
        self.forget_old_starts(now);
        if self.running.len() >= self.limits.concurrent || self.started.len() >= self.limits.per_second {
            return None;
        }
        let i = self.waiting.iter().position(|(k, _)| !self.running.contains(k))?;
        let (key, job) = self.waiting.remove(i)?;
        self.running.insert(key);
        self.started.push_back(now);
        Some((key, job))
    }

    /// When the rate limit next lets a hook start, if one is held back by
    /// it alone.
    pub fn retry_at(&mut self, now: Instant) -> Option<Instant> {
        self.forget_old_starts(now);
        let ready = self.waiting.iter().any(|(k, _)| !self.running.contains(k));
        if !ready
            || self.running.len() >= self.limits.concurrent
            || self.started.len() < self.limits.per_second
        {
            return None;
        }
        self.started.front().map(|t| *t + Duration::from_secs(1))
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HookLimits {
        HookLimits {
            concurrent: 2,
            per_second: 3,
            queued: 5,
            queued_per_path: 2,
        }
    }

    fn drain(q: &mut HookQueue<u32>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| q.next_start(now).map(|(_, j)| j)).collect()
    }

    #[test]
    fn one_hook_per_path_at_a_time_in_order() {
        let t = Instant::now();
        let mut q = HookQueue::new(limits());
        q.submit(HookKey::Path(0), 1).unwrap();
        q.submit(HookKey::Path(0), 2).unwrap();
        assert_eq!(drain(&mut q, t), [1], "the second waits for the first");
        q.finished(HookKey::Path(0));
        assert_eq!(drain(&mut q, t), [2]);
        q.finished(HookKey::Path(0));
        assert_eq!(q.running(), 0);
        assert_eq!(q.waiting(), 0);
    }

    #[test]
    fn other_paths_pass_a_busy_one_up_to_the_concurrency_cap() {
        let t = Instant::now();
        let mut q = HookQueue::new(limits());
        q.submit(HookKey::Path(0), 1).unwrap();
        q.submit(HookKey::Path(0), 2).unwrap();
        q.submit(HookKey::Path(1), 3).unwrap();
        q.submit(HookKey::Tunnel, 4).unwrap();
        assert_eq!(drain(&mut q, t), [1, 3], "two at once; path 0's second waits");
        q.finished(HookKey::Path(1));
        assert_eq!(drain(&mut q, t), [4]);
        q.finished(HookKey::Path(0));
        q.finished(HookKey::Tunnel);
        assert_eq!(drain(&mut q, t + Duration::from_secs(1)), [2]);
    }

    #[test]
    fn starts_are_limited_per_second() {
        let t = Instant::now();
        let mut q = HookQueue::new(limits());
        for (path, job) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
            q.submit(HookKey::Path(path), job).unwrap();
        }
        let mut started = drain(&mut q, t);
        q.finished(HookKey::Path(0));
        q.finished(HookKey::Path(1));
        let t1 = t + Duration::from_millis(10);
        started.extend(drain(&mut q, t1));
        assert_eq!(started, [1, 2, 3], "three a second");
        q.finished(HookKey::Path(2));
        assert_eq!(q.retry_at(t1), Some(t + Duration::from_secs(1)));
        assert_eq!(drain(&mut q, t + Duration::from_millis(999)), Vec::<u32>::new());
        assert_eq!(drain(&mut q, t + Duration::from_secs(1)), [4]);
        assert_eq!(q.retry_at(t + Duration::from_secs(1)), None, "nothing waits");
    }

    #[test]
    fn full_queues_drop_what_does_not_fit() {
        let t = Instant::now();
        let mut q = HookQueue::new(limits());
        q.submit(HookKey::Path(0), 1).unwrap();
        q.submit(HookKey::Path(0), 2).unwrap();
        assert_eq!(q.submit(HookKey::Path(0), 3), Err(Dropped::PathQueueFull));
        for p in 1..=3 {
            q.submit(HookKey::Path(p), 10 + u32::from(p)).unwrap();
        }
        assert_eq!(q.submit(HookKey::Path(9), 99), Err(Dropped::QueueFull));
        assert_eq!(q.waiting(), 5);
        // Starting frees room.
        assert!(q.next_start(t).is_some());
        assert_eq!(q.submit(HookKey::Path(9), 99), Ok(()));
    }
}
