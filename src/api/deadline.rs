//! Client deadlines: the `grpc-timeout` header, and when the service must
//! give up on a request so the client still gets an answer it can read.

use std::time::Duration;

/// The time a client allows, from its `grpc-timeout` header
/// (`<1-8 digits><H|M|S|m|u|n>`); `None` when absent or malformed, as the
/// gRPC spec treats a bad value like no deadline.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// When the service stops working on a request with `timeout`: a little
/// before the client's own deadline, so the client receives the service's
/// error (with its RequestId) instead of its own DEADLINE_EXCEEDED, and
/// abandoned work (object-storage calls) is cancelled.
pub fn answer_within(timeout: Duration) -> Duration {
    let margin = (timeout / 10).min(Duration::from_millis(100));
    timeout - margin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_of_the_spec() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("99999u"),
            Some(Duration::from_micros(99999))
        );
        assert_eq!(
            parse_grpc_timeout("12345678n"),
            Some(Duration::from_nanos(12345678))
        );
    }

    #[test]
    fn malformed_values_mean_no_deadline() {
        for value in [
            "",
            "S",
            "123456789S",
            "10s",
            "-1S",
            "1.5S",
            "10",
            "１S",
            "S１",
        ] {
            assert_eq!(parse_grpc_timeout(value), None, "{value:?}");
        }
    }

    #[test]
    fn the_answer_comes_before_the_client_gives_up() {
        assert_eq!(
            answer_within(Duration::from_millis(500)),
            Duration::from_millis(450)
        );
        assert_eq!(
            answer_within(Duration::from_secs(30)),
            Duration::from_millis(29_900)
        );
        assert_eq!(answer_within(Duration::ZERO), Duration::ZERO);
    }
}
