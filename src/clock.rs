//! The one clock: the current time ([`now_secs`] for comparisons with file times, [`now`] for
//! stamps in file names) and UTC time stamps for humans and file names, without a date crate
//! (civil-from-days).
//!
//! `STATECTL_NOW` (seconds since the epoch) replaces the clock of [`now`] only; it exists for
//! tests, so that runs within one second get distinct stamps without sleeping. File times are
//! always compared with the real clock ([`now_secs`]).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, from the system clock.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch for stamps (undo archives, exported bundles), from `STATECTL_NOW`
/// when set (test-only), else the system clock.
pub fn now() -> i64 {
    if let Some(secs) = std::env::var("STATECTL_NOW")
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
    {
        return secs;
    }
    now_secs()
}

/// `(year, month, day, hour, minute, second)` in UTC for seconds since the epoch.
pub fn utc_parts(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (
        (rest / 3600) as u32,
        (rest % 3600 / 60) as u32,
        (rest % 60) as u32,
    );
    (year, month, day, hour, minute, second)
}

/// `2026-11-24 09:25:38` (UTC).
pub fn utc_datetime(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `20261124T092538Z`, for file names.
pub fn utc_stamp(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `2026-11-24T09:25:38Z` (ISO 8601, UTC).
pub fn utc_iso(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Seconds since the epoch of a [`utc_stamp`] (`20261124T092538Z`); `None` for anything else.
pub fn parse_utc_stamp(stamp: &str) -> Option<i64> {
    let bytes = stamp.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = stamp.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Howard Hinnant's days-from-civil algorithm.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_datetime(-1), "1969-12-31 23:59:59");
    }

    #[test]
    fn stamps_parse_back() {
        for secs in [0, 951_782_400, 1_700_000_000, 1_796_000_123] {
            assert_eq!(parse_utc_stamp(&utc_stamp(secs)), Some(secs), "{secs}");
        }
        assert_eq!(utc_iso(1_700_000_000), "2023-11-14T22:13:20Z");
        for bad in [
            "2023111 T221320Z",
            "20231314T221320Z",
            "20231114T221320",
            "+0231114T221320Z",
        ] {
            assert_eq!(parse_utc_stamp(bad), None, "{bad}");
        }
    }
}
