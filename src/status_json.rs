//! The status snapshot as JSON: what the worker answers on the control
//! socket and `mlvpn-rs status --json` prints. The protocol core builds
//! the snapshot as plain data; the JSON form lives here, next to the
//! table and Prometheus renderers.
//!
//! Field names are a stable interface (DESIGN.md): see `proto::stats`.

use crate::io::data_path_status::DataPathStatus;
use crate::proto::stats::Status;

/// The status as one line of JSON (an `error` object should it not
/// serialize).
pub fn to_json(status: &Status) -> String {
    serde_json::to_string(status).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The daemon's answer: the tunnel's status with the data path's beside
/// it (`"data_path": {...}`); [`from_json`] reads it too.
pub fn with_data_path(status: &Status, data_path: &DataPathStatus) -> String {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        #[serde(flatten)]
        status: &'a Status,
        data_path: &'a DataPathStatus,
    }
    serde_json::to_string(&Answer { status, data_path }).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The `data_path` object of a daemon's answer, if it has one (an older
/// worker's does not).
pub fn data_path_of(text: &str) -> Option<DataPathStatus> {
    #[derive(serde::Deserialize)]
    struct Only {
        data_path: Option<DataPathStatus>,
    }
    serde_json::from_str::<Only>(text).ok()?.data_path
}

/// A status read back from its JSON form.
pub fn from_json(text: &str) -> Result<Status, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stats::Drops;

    #[test]
    fn the_data_path_travels_beside_the_status_and_is_read_back() {
        let status = Status {
            interface: "mlvpn0".into(),
            mode: crate::proto::Mode::Client,
            drops: Drops::default(),
            peers: Vec::new(),
        };
        let dp = DataPathStatus {
            tun_tso: true,
            udp_trains_sent: 3,
            ..Default::default()
        };
        let text = with_data_path(&status, &dp);
        assert_eq!(from_json(&text).unwrap().interface, "mlvpn0");
        assert_eq!(data_path_of(&text), Some(dp));
        assert_eq!(data_path_of(&to_json(&status)), None);
    }

    #[test]
    fn drop_counter_names_are_the_json_names_in_order() {
        let mut drops = Drops::default();
        let json = serde_json::to_value(drops).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let names: Vec<&str> = drops.fields().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, keys);
        // Each name reads its own counter.
        drops.too_big = 7;
        let json = serde_json::to_value(drops).unwrap();
        for (name, count) in drops.fields() {
            assert_eq!(json[name].as_u64(), Some(count), "{name}");
        }
    }

    /// The CLI reads what the worker wrote: a state, mode or endpoint
    /// that is not one of the known values is refused, never shown.
    #[test]
    fn a_status_with_an_unknown_state_mode_or_endpoint_is_refused() {
        let text = to_json(&crate::prometheus::tests::sample());
        assert!(from_json(&text).is_ok());
        for (good, bad) in [
            ("\"state\":\"up\"", "\"state\":\"up\\u007f\""),
            ("\"mode\":\"client\"", "\"mode\":\"client\\r\""),
            (
                "\"endpoint\":\"192.0.2.1:5080\"",
                "\"endpoint\":\"192.0.2.1:5080\\n\"",
            ),
        ] {
            assert!(text.contains(good), "{good} in {text}");
            let forged = text.replacen(good, bad, 1);
            assert!(from_json(&forged).is_err(), "{forged}");
        }
    }

    #[test]
    fn status_round_trips_and_keeps_its_field_names() {
        let status = crate::prometheus::tests::sample();
        let text = to_json(&status);
        assert!(text.starts_with("{\"interface\":"), "{text}");
        for field in [
            "\"mode\":",
            "\"drops\":",
            "\"peers\":",
            "\"srtt_ms\":",
            "\"reorder\":",
            "\"resent\":",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
        assert_eq!(from_json(&text).unwrap(), status);
    }
}
