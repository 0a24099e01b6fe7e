//! Reading the ISO-8601 times of records.

/// Seconds since the Unix epoch of an ISO-8601 time (`2023-07-13T00:29:59.51+00:00`, `…Z`).
/// Reads bytes only, never slicing the text, so any text is safe (a multibyte character where a
/// digit or the offset belongs makes the time unreadable, not a panic); fields out of their
/// calendar range are unreadable too.
pub fn parse_time(s: &str) -> Option<i64> {
    /// The value of a run of ASCII digits (no sign, no spaces).
    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    }
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (
        digits(&b[0..4])?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if let [b'.', frac @ ..] = rest {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &frac[n..];
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let mins = digits(hh)? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'-' { -mins } else { mins }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2023-07-13T00:29:59.5100003+00:00"),
            Some(1_689_208_199)
        );
        assert_eq!(parse_time("2023-07-13T02:29:59+02:00"), Some(1_689_208_199));
        assert_eq!(parse_time("yesterday"), None);
        // Issue 15: a multibyte character where the offset starts used to panic.
        assert_eq!(parse_time("2023-01-01T00:00:00é0:00"), None);
        assert_eq!(parse_time("2023-01-01T00:00:00.5é:00"), None);
        assert_eq!(parse_time("2023-13-01T00:00:00Z"), None, "month 13");
        assert_eq!(
            parse_time("2023-01-01T00:00:+1Z"),
            None,
            "a sign is no digit"
        );
    }

    /// Every valid time with a character of each UTF-8 width put in, or put over, each of its
    /// places reads back as some time or as none, and never panics.
    #[test]
    fn times_with_any_character_anywhere_never_panic() {
        let valid = [
            "2023-07-13T02:29:59+02:00",
            "2023-07-13T00:29:59.5100003-00:30",
            "2023-07-13 00:29:59Z",
        ];
        let mut cases = 0;
        for v in valid {
            assert!(parse_time(v).is_some(), "{v}");
            let chars: Vec<char> = v.chars().collect();
            for i in 0..=chars.len() {
                for c in ['é', '€', '🙂', '+', ':', '.', '9', 'Z'] {
                    let mut put_in = chars.clone();
                    put_in.insert(i, c);
                    let mut over = chars.clone();
                    if i < over.len() {
                        over[i] = c;
                    }
                    for text in [put_in, over] {
                        let text: String = text.into_iter().collect();
                        let _ = parse_time(&text);
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 500, "{cases}");
    }
}
