//! Date handling for SigV4: parsing the request date and formatting unix
//! seconds as ISO 8601 basic format (`20150830T123600Z`), all in UTC and
//! without reading the clock.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Month abbreviations used by the HTTP `Date` header (IMF-fixdate).
const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Weekday abbreviations used by the HTTP `Date` header (IMF-fixdate).
const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// Parses ISO 8601 basic format, `YYYYMMDDTHHMMSSZ`, into unix seconds.
pub(crate) fn parse_iso_basic(s: &[u8]) -> Option<i64> {
    let [y0, y1, y2, y3, mo0, mo1, d0, d1, b'T', h0, h1, mi0, mi1, s0, s1, b'Z'] = s else {
        return None;
    };
    to_unix(
        digits(&[*y0, *y1, *y2, *y3])?,
        digits(&[*mo0, *mo1])?,
        digits(&[*d0, *d1])?,
        digits(&[*h0, *h1])?,
        digits(&[*mi0, *mi1])?,
        digits(&[*s0, *s1])?,
    )
}

/// Parses an RFC 9110 IMF-fixdate (`Sun, 30 Aug 2015 12:36:00 GMT`), the
/// format of the HTTP `Date` header, into unix seconds.
pub(crate) fn parse_http_date(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let mut fields = s.split(' ');
    let (Some(weekday), Some(day), Some(month), Some(year), Some(hms), Some("GMT"), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let weekday = weekday.strip_suffix(',')?.as_bytes();
    let month = MONTHS.iter().position(|m| m[..] == *month.as_bytes())?;
    let [h0, h1, b':', m0, m1, b':', s0, s1] = hms.as_bytes() else {
        return None;
    };
    if !WEEKDAYS.iter().any(|w| w[..] == *weekday) || day.len() != 2 || year.len() != 4 {
        return None;
    }
    to_unix(
        digits(year.as_bytes())?,
        u32::try_from(month).ok()? + 1,
        digits(day.as_bytes())?,
        digits(&[*h0, *h1])?,
        digits(&[*m0, *m1])?,
        digits(&[*s0, *s1])?,
    )
}

/// Formats unix seconds as ISO 8601 basic format, `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_iso_basic(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(DAY));
    let secs = unix.rem_euclid(DAY);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Parses a run of ASCII digits.
fn digits(ds: &[u8]) -> Option<u32> {
    ds.iter().try_fold(0u32, |acc, d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
}

/// Validates a UTC civil date-time and converts it to unix seconds.
fn to_unix(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<i64> {
    let valid =
        (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month) && hour < 24 && min < 60 && sec < 60;
    valid.then(|| {
        days_from_civil(i64::from(year), month, day) * DAY
            + i64::from(hour) * 3600
            + i64::from(min) * 60
            + i64::from(sec)
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`). `month` is 1..=12.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)` of a day number.
/// Defined for every day number reachable from an `i64` of seconds.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        assert_eq!(parse_iso_basic(b"20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format_iso_basic(1_440_938_160), "20150830T123600Z");
        assert_eq!(parse_iso_basic(b"19700101T000000Z"), Some(0));
        assert_eq!(parse_iso_basic(b"20000229T235959Z"), Some(951_868_799));
        assert_eq!(format_iso_basic(951_868_799), "20000229T235959Z");
        assert_eq!(format_iso_basic(-1), "19691231T235959Z");
    }

    /// Every string `parse_iso_basic` accepts is the one `format_iso_basic` writes for its time
    /// (the verifier signs an X-Amz-Date as it came, relying on this). Deterministic samples of
    /// `YYYYMMDDTHHMMSSZ` with each field drawn a little past its valid range.
    #[test]
    fn accepted_iso_strings_are_their_own_formatting() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut draw = |bound: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let mut accepted = 0;
        for _ in 0..200_000 {
            let text = format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                draw(10_000),
                draw(14),
                draw(33),
                draw(26),
                draw(62),
                draw(62)
            );
            if let Some(unix) = parse_iso_basic(text.as_bytes()) {
                accepted += 1;
                assert_eq!(format_iso_basic(unix), text);
            }
        }
        assert!(accepted > 100_000, "only {accepted} samples were valid times");
    }

    #[test]
    fn iso_rejects_bad_input() {
        for bad in [
            &b"20150830T123600"[..],
            b"2015-08-30T12:36:00Z",
            b"20150230T123600Z",
            b"20190229T000000Z",
            b"20151330T123600Z",
            b"20150830T243600Z",
            b"20150830T126000Z",
            b"20150830T123660Z",
            b"2015083OT123600Z",
            b"+0150830T123600Z",
            b"",
        ] {
            assert_eq!(parse_iso_basic(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(parse_http_date(b"Mon, 09 Sep 2011 23:36:00 GMT"), parse_iso_basic(b"20110909T233600Z"));
        assert_eq!(parse_http_date(b"Mon, 09 Sep 2011 23:36:00 UTC"), None);
        assert_eq!(parse_http_date(b"Xyz, 09 Sep 2011 23:36:00 GMT"), None);
        assert_eq!(parse_http_date(b"Mon, 31 Sep 2011 23:36:00 GMT"), None);
    }

    #[test]
    fn format_extremes_do_not_panic() {
        for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            assert!(!format_iso_basic(t).is_empty());
        }
    }
}
