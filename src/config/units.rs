//! Units in config values: rates ("50mbit"), durations ("250ms"), sizes.

/// A value whose unit or range is wrong; the message says what is
/// expected (the config parser prefixes it with the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("rate \"{0}\" must be positive, e.g. \"50mbit\"")]
    NegativeRate(String),
    #[error(
        "unknown rate unit \"{0}\"; expected bit, kbit, mbit, gbit \
         (or bps, kbps, mbps, gbps), e.g. \"50mbit\""
    )]
    UnknownRateUnit(String),
    #[error("\"{0}\" is not a rate; expected e.g. \"50mbit\"")]
    NotARate(String),
    #[error("rate \"{0}\" out of range; expected 1bit to 10000gbit")]
    RateOutOfRange(String),
    #[error("duration \"{0}\" must be positive, e.g. \"250ms\"")]
    NegativeDuration(String),
    #[error("\"{0}\" needs a unit; expected e.g. \"250ms\" or \"3s\"")]
    DurationWithoutUnit(String),
    #[error("unknown duration unit \"{0}\"; expected us, ms, s, m or h")]
    UnknownDurationUnit(String),
    #[error("\"{0}\" is not a duration; expected e.g. \"250ms\"")]
    NotADuration(String),
    #[error("duration \"{0}\" out of range; expected more than 0 and at most 24h")]
    DurationOutOfRange(String),
    #[error("\"{0}\" is not a size; expected a number of bytes, e.g. 1400")]
    NotASize(String),
    #[error("size \"{0}\" is too large")]
    SizeTooLarge(String),
}

/// Parses a rate into bit/s: `bit`, `kbit`, `mbit`, `gbit` (SI, ×1000; also
/// `bps`, `kbps`, `mbps`, `gbps`, all in bits), case-insensitive; a bare
/// number is bit/s.
pub fn parse_rate(s: &str) -> Result<u64, UnitError> {
    let t = s.trim().to_ascii_lowercase();
    if t.starts_with('-') {
        return Err(UnitError::NegativeRate(s.into()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "bit" | "bps" => 1,
        "kbit" | "kbps" => 1_000,
        "mbit" | "mbps" => 1_000_000,
        "gbit" | "gbps" => 1_000_000_000,
        u => return Err(UnitError::UnknownRateUnit(u.into())),
    };
    let v: f64 = num.parse().map_err(|_| UnitError::NotARate(s.into()))?;
    let bits = v * mult as f64;
    if !bits.is_finite() || !(1.0..=1e13).contains(&bits) {
        return Err(UnitError::RateOutOfRange(s.into()));
    }
    Ok(bits.round() as u64)
}

/// Parses a duration with a unit: `us`, `ms`, `s`, `m`, `h`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, UnitError> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(UnitError::NegativeDuration(s.into()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => return Err(UnitError::DurationWithoutUnit(s.into())),
        u => return Err(UnitError::UnknownDurationUnit(u.into())),
    };
    let v: f64 = num.parse().map_err(|_| UnitError::NotADuration(s.into()))?;
    let secs = v * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(UnitError::DurationOutOfRange(s.into()));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Parses a size in bytes (an MTU): digits only, since a unit on an MTU
/// would only invite "1.5k" mistakes.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(UnitError::NotASize(s.into()));
    }
    t.parse().map_err(|_| UnitError::SizeTooLarge(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("50mbit"), Ok(50_000_000));
        assert_eq!(parse_rate("20Mbit"), Ok(20_000_000));
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("800kbps"), Ok(800_000));
        assert_eq!(parse_rate("1200"), Ok(1200));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5mbit").unwrap_err().to_string().contains("positive"));
        assert!(parse_rate("5 furlongs")
            .unwrap_err()
            .to_string()
            .contains("mbit, gbit"));
        assert!(parse_rate("0.1bit").is_err());
        assert_eq!(parse_rate("10000gbit"), Ok(10_000_000_000_000));
        assert!(parse_rate("10001gbit").is_err());
        assert!(parse_rate("5 furlongs")
            .unwrap_err()
            .to_string()
            .contains("unknown rate unit"));
        assert!(parse_rate("").is_err());
        assert!(parse_rate("1e30gbit").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("3")
            .unwrap_err()
            .to_string()
            .contains("needs a unit"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3 weeks")
            .unwrap_err()
            .to_string()
            .contains("us, ms, s, m or h"));
        assert!(parse_duration("-1s")
            .unwrap_err()
            .to_string()
            .contains("positive"));
        assert!(parse_duration("25h").is_err());
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1400"), Ok(1400));
        assert_eq!(parse_size(" 9000 "), Ok(9000));
        assert!(parse_size("1.5k").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999999")
            .unwrap_err()
            .to_string()
            .contains("too large"));
    }
}
