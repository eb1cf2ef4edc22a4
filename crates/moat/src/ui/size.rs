//! Sizes and ages as users type and read them: `1.2 GB`, `7d`.

/// Bytes in decimal units, as `docker images` shows them: `950 MB`, `1.2 GB`, `12 kB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// An age as `--older-than` takes it: whole numbers of `s`, `m`, `h`, `d` or `w`, one or
/// more (`1d12h`).
pub fn parse_age(text: &str) -> Result<jiff::SignedDuration, String> {
    let bad = || {
        format!(
            "`{text}` is not an age: use a number and a unit, s, m, h, d or w (e.g. `7d`, `12h`)"
        )
    };
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(bad());
    }
    Ok(jiff::SignedDuration::from_secs(total))
}

/// A duration as `--older-than` would take it, in its largest whole unit: `7d`, `12h`.
pub fn age_of(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= len && secs % len == 0 {
            return format!("{}{unit}", secs / len);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(12_345), "12 kB");
        assert_eq!(bytes(949_600_000), "950 MB");
        assert_eq!(bytes(1_234_000_000), "1.2 GB");
    }

    #[test]
    fn ages() {
        let secs = |t: &str| parse_age(t).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs("1d12h"), Ok(129_600));
        assert_eq!(secs("2w"), Ok(1_209_600));
        assert_eq!(secs("0s"), Ok(0));
        assert_eq!(age_of(parse_age("1w").unwrap()), "7d");
        assert_eq!(age_of(parse_age("36h").unwrap()), "36h");
        assert_eq!(age_of(parse_age("90s").unwrap()), "90s");
        for bad in ["", "7", "d", "7y", "-1d", "1.5h"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
