//! Schedule spellings the deployment formats need, from a duration in minutes.

/// ISO-8601 duration as the Sentinel ARM API wants it: `PT5M`, `PT1H`, `P1D`, `P14D`.
pub fn iso_duration(minutes: i64) -> String {
    if minutes % 1440 == 0 {
        format!("P{}D", minutes / 1440)
    } else if minutes % 60 == 0 {
        format!("PT{}H", minutes / 60)
    } else {
        format!("PT{minutes}M")
    }
}

/// A five-field cron schedule that runs at least every `minutes`: `*/5 * * * *`, `0 */2 * * *`,
/// `0 0 * * *`. Periods that do not divide an hour or a day round *down* to one that does, so
/// runs come at least as often as the frequency and leave no gap between them.
pub fn cron(minutes: i64) -> String {
    let m = minutes.max(1);
    let largest = |steps: &[i64], unit: i64| {
        steps
            .iter()
            .copied()
            .filter(|d| d * unit <= m)
            .max()
            .unwrap_or(steps[0])
    };
    if m < 60 {
        format!(
            "*/{} * * * *",
            largest(&[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30], 1)
        )
    } else if m < 1440 {
        match largest(&[1, 2, 3, 4, 6, 8, 12], 60) {
            1 => "0 * * * *".into(),
            h => format!("0 */{h} * * *"),
        }
    } else {
        match (m / 1440).clamp(1, 14) {
            1 => "0 0 * * *".into(),
            d => format!("0 0 */{d} * *"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(iso_duration(5), "PT5M");
        assert_eq!(iso_duration(60), "PT1H");
        assert_eq!(iso_duration(90), "PT90M");
        assert_eq!(iso_duration(1440), "P1D");
        assert_eq!(iso_duration(14 * 1440), "P14D");
        assert_eq!(cron(5), "*/5 * * * *");
        assert_eq!(cron(60), "0 * * * *");
        assert_eq!(cron(120), "0 */2 * * *");
        assert_eq!(cron(1440), "0 0 * * *");
        assert_eq!(cron(2 * 1440), "0 0 */2 * *");
        assert_eq!(cron(100), "0 * * * *");
        assert_eq!(cron(7), "*/6 * * * *");
    }
}
