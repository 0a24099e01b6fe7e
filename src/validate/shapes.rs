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
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    matches!((num(0..4), num(5..7), num(8..10)), (Some(y), Some(m), Some(d)) if y >= 2000 && (1..=12).contains(&m) && (1..=31).contains(&d))
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
