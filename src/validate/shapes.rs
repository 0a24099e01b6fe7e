//! The shapes of identifiers and values: UUIDs, slugs, columns, dates, versions, ATT&CK and
//! TRR ids.

pub(super) fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && s != "00000000-0000-0000-0000-000000000000"
}

pub fn is_slug(s: &str) -> bool {
    (3..=60).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub(super) fn is_column(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.starts_with("rp_")
}

pub(super) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    // A calendar date: `2026-02-30` would make the Sigma file unloadable (`sigma check` crashes
    // on the whole folder).
    matches!((num(0..4), num(5..7), num(8..10)), (Some(y), Some(m), Some(d)) if y >= 2000 && (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub(super) fn is_semver(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn is_technique(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() == 5 || (b.len() == 9 && b[5] == b'.' && b[6..].iter().all(u8::is_ascii_digit)))
        && b[0] == b'T'
        && b[1..5].iter().all(u8::is_ascii_digit)
}

pub(super) fn is_trr(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[0].len() == 7
        && parts[0].starts_with("TRR")
        && parts[0][3..].bytes().all(|b| b.is_ascii_digit())
        && (2..=4).contains(&parts[1].len())
        && parts[1].bytes().all(|b| b.is_ascii_uppercase())
        && parts[2].len() == 1
        && parts[2].bytes().all(|b| b.is_ascii_uppercase())
}

pub(super) fn is_atrm(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("AZT") else {
        return false;
    };
    let (num, sub) = rest.split_once('.').unwrap_or((rest, "0"));
    (3..=4).contains(&num.len())
        && num.bytes().all(|b| b.is_ascii_digit())
        && !sub.is_empty()
        && sub.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::is_date;

    #[test]
    fn dates_are_calendar_dates() {
        for ok in [
            "2026-02-28",
            "2024-02-29",
            "2000-02-29",
            "2026-12-31",
            "2026-04-30",
        ] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "2026-02-30",
            "2026-02-29",
            "2100-02-29",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "1999-01-01",
            "2026-1-01",
            "2026/01/01",
            "éé-01-01xx",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }
}
