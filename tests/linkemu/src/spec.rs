//! Link parameters and their text form (`delay=10ms jitter=1ms loss=0.1
//! rate=50mbit queue=100000 reorder=0`).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub delay: Duration,
    pub jitter: Duration,
    /// Probability of dropping a packet (0..1).
    pub loss: f64,
    /// bit/s; `None` = unlimited.
    pub rate: Option<u64>,
    /// Queue limit in bytes (rate-limited links); default 50 ms of the rate,
    /// at least 64 KiB.
    pub queue: Option<usize>,
    /// Allow jitter to reorder packets (FIFO otherwise).
    pub reorder: bool,
    /// Blackhole: drop everything.
    pub cut: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            rate: None,
            queue: None,
            reorder: false,
            cut: false,
        }
    }
}

impl Spec {
    pub fn queue_limit(&self) -> usize {
        self.queue.unwrap_or_else(|| {
            self.rate
                .map_or(usize::MAX, |r| ((r / 8 / 20) as usize).max(64 << 10))
        })
    }

    /// Applies `key=value` settings (space separated) on top of `self`.
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        for item in text.split_whitespace() {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {item:?}"))?;
            match k {
                "delay" => self.delay = duration(v)?,
                "jitter" => self.jitter = duration(v)?,
                "loss" => {
                    self.loss = v
                        .parse()
                        .ok()
                        .filter(|l: &f64| (0.0..=1.0).contains(l))
                        .ok_or("loss: 0..1")?
                }
                "rate" => {
                    self.rate = if v == "0" || v == "none" {
                        None
                    } else {
                        Some(rate(v)?)
                    }
                }
                "queue" => self.queue = Some(v.parse().map_err(|_| "queue: bytes")?),
                "reorder" => self.reorder = v == "1" || v == "true",
                _ => return Err(format!("unknown setting {k:?}")),
            }
        }
        Ok(())
    }
}

fn split_unit(s: &str) -> (f64, &str) {
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (s[..i].parse().unwrap_or(f64::NAN), &s[i..])
}

pub fn duration(s: &str) -> Result<Duration, String> {
    let (v, unit) = split_unit(s);
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return Err(format!("duration {s:?}: use us, ms or s")),
    };
    if v.is_nan() || v < 0.0 {
        return Err(format!("duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

pub fn rate(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let (v, unit) = split_unit(&lower);
    let scale = match unit {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return Err(format!("rate {s:?}: use bit, kbit, mbit or gbit")),
    };
    let r = v * scale;
    if r.is_nan() || r < 1.0 {
        return Err(format!("rate {s:?}"));
    }
    Ok(r as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let mut s = Spec::default();
        s.apply("delay=10ms jitter=500us loss=0.3 rate=50mbit reorder=1")
            .unwrap();
        assert_eq!(s.delay, Duration::from_millis(10));
        assert_eq!(s.jitter, Duration::from_micros(500));
        assert_eq!(s.rate, Some(50_000_000));
        assert!(s.reorder && (s.loss - 0.3).abs() < 1e-9);
        assert_eq!(s.queue_limit(), 312_500);
        assert!(s.apply("loss=2").is_err());
        assert!(s.apply("colour=blue").is_err());
        assert!(s.apply("delay=10").is_err());
    }
}
