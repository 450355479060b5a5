//! Path choice for each outgoing packet (simple version).
//!
//! Smooth weighted round robin (as in nginx): each usable path gets a share
//! proportional to its `bandwidth_up` (paths without one get the mean of the
//! others, or all share equally), interleaved rather than in bursts.
//! `fallback` paths are used only when no normal path is usable.

/// One candidate: index of the path and whether it may carry traffic.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub usable: bool,
    pub fallback: bool,
    pub bandwidth_up: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Scheduler {
    credit: Vec<i64>,
}

impl Scheduler {
    /// Picks the index of the path for the next packet.
    pub fn pick(&mut self, paths: &[Candidate]) -> Option<usize> {
        if self.credit.len() != paths.len() {
            self.credit.resize(paths.len(), 0);
        }
        let any_normal = paths.iter().any(|p| p.usable && !p.fallback);
        let eligible = |p: &Candidate| p.usable && p.fallback != any_normal;
        let (mut known_sum, mut known_n) = (0u64, 0u64);
        for p in paths.iter().filter(|p| eligible(p)) {
            if let Some(b) = p.bandwidth_up {
                known_sum = known_sum.saturating_add(b / 1000);
                known_n += 1;
            }
        }
        let default_weight = known_sum.checked_div(known_n).unwrap_or(1).max(1);
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, p) in paths.iter().enumerate() {
            if !eligible(p) {
                self.credit[i] = 0;
                continue;
            }
            let w = p
                .bandwidth_up
                .map(|b| (b / 1000).max(1))
                .unwrap_or(default_weight);
            let w = i64::try_from(w).unwrap_or(i64::MAX / 64).min(i64::MAX / 64);
            self.credit[i] += w;
            total += w;
            if best.is_none_or(|b| self.credit[i] > self.credit[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            self.credit[b] -= total;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(usable: bool, fallback: bool, bw: Option<u64>) -> Candidate {
        Candidate {
            usable,
            fallback,
            bandwidth_up: bw,
        }
    }

    fn shares(s: &mut Scheduler, paths: &[Candidate], n: usize) -> Vec<usize> {
        let mut counts = vec![0; paths.len()];
        for _ in 0..n {
            counts[s.pick(paths).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn equal_round_robin_without_bandwidth() {
        let mut s = Scheduler::default();
        let p = [c(true, false, None), c(true, false, None)];
        let picks: Vec<_> = (0..4).map(|_| s.pick(&p).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }

    #[test]
    fn weighted_by_bandwidth() {
        let mut s = Scheduler::default();
        let p = [c(true, false, Some(80_000_000)), c(true, false, Some(20_000_000))];
        assert_eq!(shares(&mut s, &p, 1000), vec![800, 200]);
    }

    #[test]
    fn unknown_bandwidth_gets_mean() {
        let mut s = Scheduler::default();
        let p = [
            c(true, false, Some(30_000_000)),
            c(true, false, None),
            c(true, false, Some(10_000_000)),
        ];
        assert_eq!(shares(&mut s, &p, 900), vec![450, 300, 150]);
    }

    #[test]
    fn down_paths_and_fallback() {
        let mut s = Scheduler::default();
        let p = [c(false, false, None), c(true, false, None), c(true, true, None)];
        assert_eq!(shares(&mut s, &p, 10), vec![0, 10, 0]);
        let p = [c(false, false, None), c(false, false, None), c(true, true, None)];
        assert_eq!(shares(&mut s, &p, 10), vec![0, 0, 10]);
        let p = [c(false, false, None), c(false, false, None), c(false, true, None)];
        assert_eq!(s.pick(&p), None);
    }
}
