//! RFC 3339 timestamps as credential endpoints and STS write them (`Expiration`), and the UTC
//! form used in log lines. Pure functions; no clock is read here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`. `T` and `Z` may be lower case and
/// the `T` may be a space (RFC 3339 §5.6 allows both). Fractions beyond nanoseconds are
/// dropped. `None` when anything is out of range.
pub(super) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let bytes = text.trim().as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let year = digits(bytes, 0, 4)?;
    let month = digits(bytes, 5, 2)?;
    let day = digits(bytes, 8, 2)?;
    let hour = digits(bytes, 11, 2)?;
    let minute = digits(bytes, 14, 2)?;
    let second = digits(bytes, 17, 2)?;
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    let in_range = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour <= 23
        && minute <= 59
        // 60 is a leap second; it lands on the next minute's first second.
        && second <= 60;
    if !separators_ok || !in_range {
        return None;
    }

    let mut index = 19;
    let mut nanos: u32 = 0;
    if bytes.get(index) == Some(&b'.') {
        index += 1;
        let start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            if index - start < 9 {
                nanos = nanos * 10 + u32::from(bytes[index] - b'0');
            }
            index += 1;
        }
        if index == start {
            return None;
        }
        for _ in (index - start)..9 {
            nanos *= 10;
        }
    }

    let offset_seconds = match &bytes[index..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [_, _, b':', _, _] => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                [_, _, _, _] => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };

    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second
            - offset_seconds;
    let since_epoch = Duration::new(seconds.unsigned_abs(), nanos);
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(since_epoch)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(seconds.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, whole seconds, for log lines.
pub(super) fn format_utc(time: SystemTime) -> String {
    let Ok(since_epoch) = time.duration_since(UNIX_EPOCH) else {
        return "before 1970".to_string();
    };
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn digits(bytes: &[u8], start: usize, count: usize) -> Option<i64> {
    let slice = bytes.get(start..start + count)?;
    slice.iter().try_fold(0i64, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + i64::from(byte - b'0'))
    })
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Counts in 400-year eras starting on
/// March 1st, so the leap day is the last day of its year and the month lengths repeat.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days separate 0000-03-01 from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, nanos: u32) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::new(seconds, nanos))
    }

    #[test]
    fn accepts_the_forms_endpoints_send() {
        // 2026-12-04T15:00:00Z is 1,796,396,400 s after the epoch.
        let base = 1_796_396_400;
        let cases = [
            ("2026-12-04T15:00:00Z", at(base, 0)),
            ("2026-12-04T15:00:00.120Z", at(base, 120_000_000)),
            ("2026-12-04T15:00:00.5Z", at(base, 500_000_000)),
            ("2026-12-04T15:00:00.123456789123Z", at(base, 123_456_789)),
            ("2026-12-04t15:00:00z", at(base, 0)),
            ("2026-12-04 15:00:00Z", at(base, 0)),
            ("2026-12-04T16:00:00+01:00", at(base, 0)),
            ("2026-12-04T10:30:00-04:30", at(base, 0)),
            ("2026-12-04T16:00:00.250+0100", at(base, 250_000_000)),
            ("2026-12-04T15:00:00+00:00", at(base, 0)),
            ("  2026-12-04T15:00:00Z\n", at(base, 0)),
            ("1970-01-01T00:00:00Z", at(0, 0)),
            ("2024-02-29T00:00:00Z", at(1_709_164_800, 0)),
            ("2016-12-31T23:59:60Z", at(1_483_228_800, 0)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
    }

    #[test]
    fn refuses_malformed_or_out_of_range_values() {
        for text in [
            "",
            "2026-12-04",
            "2026-12-04T15:00:00",
            "2026-12-04T15:00:00.Z",
            "2026-13-04T15:00:00Z",
            "2026-02-29T15:00:00Z",
            "2026-12-32T15:00:00Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T15:60:00Z",
            "2026-12-04T15:00:00+1:00",
            "2026-12-04T15:00:00+24:00",
            "2026-12-04T15:00:00Zjunk",
            "2026/12/04T15:00:00Z",
            "20a6-12-04T15:00:00Z",
            "1764860400",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }

    #[test]
    fn formats_whole_seconds_in_utc() {
        let cases = [
            (UNIX_EPOCH, "1970-01-01T00:00:00Z"),
            (
                UNIX_EPOCH + Duration::new(1_796_396_400, 999),
                "2026-12-04T15:00:00Z",
            ),
            (
                UNIX_EPOCH + Duration::from_secs(1_709_164_800),
                "2024-02-29T00:00:00Z",
            ),
            (
                UNIX_EPOCH + Duration::from_secs(951_782_399),
                "2000-02-28T23:59:59Z",
            ),
        ];
        for (time, expected) in cases {
            assert_eq!(format_utc(time), expected);
        }
    }

    #[test]
    fn parse_and_format_agree_across_four_centuries() {
        let mut days = -1;
        while days < 146_097 * 2 {
            days += 997;
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
