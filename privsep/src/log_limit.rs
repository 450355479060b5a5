//! At most a few log lines a second about what the worker causes: a
//! compromised worker must not be able to flood the log through the
//! parent.

use std::time::{Duration, Instant};

/// Allows `per_second` lines in each one-second window and counts the rest.
#[derive(Debug)]
pub struct LogLimit {
    per_second: u32,
    /// Start of the current window (from the first line).
    window: Option<Instant>,
    count: u32,
    /// Lines not logged since the last one that was.
    suppressed: u64,
}

impl LogLimit {
    pub fn new(per_second: u32) -> LogLimit {
        LogLimit {
            per_second,
            window: None,
            count: 0,
            suppressed: 0,
        }
    }

    /// Whether to log a line now (at `now`); `Some(n)`: yes, and `n` lines
    /// were left out before it (say so in the line).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let start = *self.window.get_or_insert(now);
        if now.saturating_duration_since(start) >= Duration::from_secs(1) {
            self.window = Some(now);
            self.count = 0;
        }
        if self.count >= self.per_second {
            self.suppressed += 1;
            return None;
        }
        self.count += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// ` (N more not logged)` when `n > 0`.
pub fn suppressed_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more not logged)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_lines_a_second_and_the_rest_counted() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(3);
        let first: Vec<_> = (0..5).map(|_| l.allow(t0)).collect();
        assert_eq!(first, [Some(0), Some(0), Some(0), None, None]);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(l.allow(later), Some(2), "the next line says two were left out");
        assert_eq!(l.allow(later), Some(0));
        assert_eq!(suppressed_note(2), " (2 more not logged)");
        assert_eq!(suppressed_note(0), "");
    }
}
