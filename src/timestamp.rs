//! UTC calendar arithmetic: RFC 3339 timestamps as credential endpoints and STS write them
//! (`Expiration`), and the form used in log lines. Pure functions; no clock is read here.
//! Used by `logging`, `cache` and `credentials`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;
const MILLISECONDS_PER_DAY: i64 = SECONDS_PER_DAY * 1000;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`. `T` and `Z` may be lower case and
/// the `T` may be a space (RFC 3339 §5.6 allows both). Fractions beyond nanoseconds are
/// dropped. `None` when anything is out of range.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
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

/// `time` in UTC as RFC 3339 with milliseconds: `2026-12-04T15:00:00.120Z`. Sub-millisecond
/// digits are cut, not rounded, so a time never prints later than it is. Times before 1970
/// work too; ones beyond ±292 million years are clamped.
pub fn format_utc(time: SystemTime) -> String {
    let milliseconds = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        // Before the epoch, cutting digits means rounding towards the past: half a millisecond
        // before 1970 prints as 1969-12-31T23:59:59.999Z.
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_millis()).unwrap_or(i64::MAX);
            let partial = i64::from(before.subsec_nanos() % 1_000_000 != 0);
            -(whole.saturating_add(partial))
        }
    };
    let days = milliseconds.div_euclid(MILLISECONDS_PER_DAY);
    let of_day = milliseconds.rem_euclid(MILLISECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
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

/// The time `milliseconds` after the Unix epoch (before it when negative), for the tests here
/// and in `logging`.
#[cfg(test)]
pub(crate) fn at_milliseconds(milliseconds: i64) -> SystemTime {
    let offset = Duration::from_millis(milliseconds.unsigned_abs());
    if milliseconds >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
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
    fn parse_and_format_agree_across_four_centuries() {
        let mut days = -1;
        while days < 146_097 * 2 {
            days += 997;
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn format_utc_prints_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (999, "1970-01-01T00:00:00.999Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (86_400_000, "1970-01-02T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_709_164_800_123, "2024-02-29T00:00:00.123Z"),
            (1_796_396_400_120, "2026-12-04T15:00:00.120Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (4_107_456_000_000, "2100-02-28T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
            (-2_203_891_200_000, "1900-03-01T00:00:00.000Z"),
            (-2_203_977_600_000, "1900-02-28T00:00:00.000Z"),
        ];
        for (milliseconds, text) in cases {
            assert_eq!(
                format_utc(at_milliseconds(milliseconds)),
                text,
                "{milliseconds}"
            );
        }
    }

    #[test]
    fn format_utc_cuts_sub_millisecond_digits() {
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_nanos(1_999_999)),
            "1970-01-01T00:00:00.001Z"
        );
        assert_eq!(
            format_utc(UNIX_EPOCH - Duration::from_nanos(1)),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_utc(UNIX_EPOCH - Duration::from_nanos(1_000_001)),
            "1969-12-31T23:59:59.998Z"
        );
    }

    /// Checks every day from 1600 to 2400 against a calendar walked one day at a time.
    #[test]
    fn civil_from_days_agrees_with_a_day_by_day_calendar() {
        let is_leap = |year: i64| (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_length = |year: i64, month: i64| match month {
            2 if is_leap(year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        // 1600-01-01 is 135,140 days before 1970-01-01.
        let (mut year, mut month, mut day) = (1600, 1, 1);
        for days in -135_140..=156_000 {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            day += 1;
            if day > month_length(year, month) {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
        assert!(year >= 2397, "walked to {year}");
    }
}
