//! Time as DynamoDB attributes, SQS deadlines and EMF timestamps count it: Unix milliseconds.

use time::OffsetDateTime;

/// `at` in Unix milliseconds (i64 holds them for the next 290 million years).
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_since_the_epoch() {
        let at = time::macros::datetime!(2026-12-02 10:00:00.123_456 UTC);
        assert_eq!(unix_ms(at), 1_796_205_600_123);
        assert_eq!(unix_ms(OffsetDateTime::UNIX_EPOCH), 0);
    }
}
