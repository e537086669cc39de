//! Date-typed fields and date values, compared as Elasticsearch compares
//! them: a `date` field holds epoch milliseconds, a query value is parsed
//! with `strict_date_optional_time` or read as epoch milliseconds
//! (`ExpressionTranslators.BinaryComparisons` in x-pack/plugin/ql formats a
//! date literal with `strict_date_optional_time_nanos` and sends a range
//! query; the default `date` mapping format is
//! `strict_date_optional_time||epoch_millis`).

/// Whether `path` is a `date` field in ECS (the fields the project's
/// documents and Elastic's rules use): `@timestamp`, `event.created`,
/// `event.ingested`, `event.start`, `event.end`, the `start`/`end` of a
/// process and of its parent / leaders, file times and signature
/// timestamps.
pub fn is_date_field(path: &str) -> bool {
    if matches!(
        path,
        "@timestamp"
            | "event.created"
            | "event.ingested"
            | "event.start"
            | "event.end"
            | "file.accessed"
            | "file.created"
            | "file.ctime"
            | "file.mtime"
            | "package.installed"
    ) {
        return true;
    }
    (path.starts_with("process.") && (path.ends_with(".start") || path.ends_with(".end")))
        || path.ends_with(".code_signature.timestamp")
}

/// Milliseconds since the epoch of a date value: an ISO-8601 date in
/// `strict_date_optional_time` form (`2017-08-30`, `2017-08-30T20:47:33Z`,
/// `2017-08-30T20:47:33.123+02:00`; no zone means UTC) or epoch
/// milliseconds written as digits, optionally with a fraction of a
/// millisecond (`1516116808349.123456`, as `epoch_millis` reads it).
/// Sub-millisecond digits are truncated, as a `date` (millisecond) field
/// stores them.
pub fn parse_millis(s: &str) -> Option<i64> {
    parse_nanos(s).map(|(ms, _)| ms)
}

/// A date value as [`parse_millis`] reads it, with the nanoseconds within
/// the millisecond (0 to 999,999) it also gives, as a `date_nanos` field
/// stores them (`2017-08-30T20:47:33.123456789Z`, `1516116808349.123456`).
pub fn parse_nanos(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) && b.len() != 4 {
        // epoch_millis (a bare 4-digit number is a year in
        // strict_date_optional_time, which is tried first).
        return s.parse().ok().map(|ms| (ms, 0));
    }
    if let Some((int, frac)) = s.split_once('.') {
        let all_digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        if all_digits(int) && all_digits(frac) && frac.len() <= 6 {
            return Some((int.parse().ok()?, fraction_nanos(frac.as_bytes(), 6)));
        }
    }
    if let Some(rest) = s.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit()) {
            return s.parse().ok().map(|ms| (ms, 0));
        }
    }
    parse_iso(b)
}

/// `digits` (at most `width`) as the leading digits of a `width`-digit
/// fraction: `fraction_nanos(b"5", 6)` is 500,000.
fn fraction_nanos(digits: &[u8], width: usize) -> u32 {
    (0..width).fold(0u32, |a, i| {
        a * 10 + digits.get(i).map_or(0, |c| u32::from(c - b'0'))
    })
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let d = b.get(at..at + n)?;
    if !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
}

fn parse_iso(b: &[u8]) -> Option<(i64, u32)> {
    let year = digits(b, 0, 4)?;
    let mut p = 4;
    let (mut month, mut day) = (1, 1);
    let (mut h, mut mi, mut sec, mut millis) = (0, 0, 0, 0);
    let mut sub_ns = 0u32;
    let mut offset_min = 0i64;
    if b.get(p) == Some(&b'-') {
        month = digits(b, p + 1, 2)?;
        p += 3;
        if b.get(p) == Some(&b'-') {
            day = digits(b, p + 1, 2)?;
            p += 3;
            if b.get(p) == Some(&b'T') {
                h = digits(b, p + 1, 2)?;
                p += 3;
                if b.get(p) == Some(&b':') {
                    mi = digits(b, p + 1, 2)?;
                    p += 3;
                    if b.get(p) == Some(&b':') {
                        sec = digits(b, p + 1, 2)?;
                        p += 3;
                        if matches!(b.get(p), Some(b'.' | b',')) {
                            p += 1;
                            let start = p;
                            while b.get(p).is_some_and(u8::is_ascii_digit) {
                                p += 1;
                            }
                            let frac = &b[start..p];
                            if frac.is_empty() || frac.len() > 9 {
                                return None;
                            }
                            for i in 0..3 {
                                millis =
                                    millis * 10 + frac.get(i).map_or(0, |c| i64::from(c - b'0'));
                            }
                            sub_ns = fraction_nanos(frac.get(3..).unwrap_or(&[]), 6);
                        }
                    }
                }
                match b.get(p) {
                    None => {}
                    Some(b'Z') => p += 1,
                    Some(&c @ (b'+' | b'-')) => {
                        let oh = digits(b, p + 1, 2)?;
                        p += 3;
                        let om = if b.get(p) == Some(&b':') {
                            p += 3;
                            digits(b, p - 2, 2)?
                        } else if b.len() >= p + 2 {
                            p += 2;
                            digits(b, p - 2, 2)?
                        } else {
                            0
                        };
                        offset_min = (oh * 60 + om) * if c == b'-' { -1 } else { 1 };
                    }
                    _ => return None,
                }
            }
        }
    }
    if p != b.len() {
        return None;
    }
    Some((
        civil_millis(year, month, day, h, mi, sec)? - offset_min * 60_000 + millis,
        sub_ns,
    ))
}

/// A `date` mapping's `format`: alternatives separated by `||`, each a
/// built-in name (`epoch_millis`, `epoch_second`, the ISO names read as
/// [`parse_millis`] reads a date) or a Java `DateTimeFormatter` pattern of
/// numeric fields (`yyyy`/`uuuu`, `MM`, `dd`, `HH`, `mm`, `ss`, `SSS`) and
/// literals, always UTC. Elasticsearch stores a `date` as epoch
/// milliseconds whatever its format, so values written in different formats
/// are one instant (what a `sample` key on the field compares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    alternatives: Vec<String>,
}

impl Default for DateFormat {
    /// `strict_date_optional_time||epoch_millis`, a `date` field's default.
    fn default() -> DateFormat {
        DateFormat::new("strict_date_optional_time||epoch_millis")
    }
}

impl DateFormat {
    /// A format as a mapping's `format` writes it.
    pub fn new(spec: &str) -> DateFormat {
        DateFormat {
            alternatives: spec
                .split("||")
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Adds another format's alternatives (a field mapped with different
    /// formats in different indices).
    pub fn merge(&mut self, other: &DateFormat) {
        for a in &other.alternatives {
            if !self.alternatives.contains(a) {
                self.alternatives.push(a.clone());
            }
        }
    }

    /// Epoch milliseconds of `s` by the first alternative that reads it.
    pub fn parse_millis(&self, s: &str) -> Option<i64> {
        self.alternatives.iter().find_map(|a| parse_one(a, s))
    }
}

fn parse_one(format: &str, s: &str) -> Option<i64> {
    match format {
        "epoch_millis" => {
            let int = s.split_once('.').map_or(s, |(i, _)| i);
            int.parse().ok()
        }
        "epoch_second" => s.parse::<i64>().ok()?.checked_mul(1000),
        "strict_date_optional_time"
        | "date_optional_time"
        | "strict_date_optional_time_nanos"
        | "strict_date_time"
        | "date_time"
        | "strict_date"
        | "date" => parse_iso(s.as_bytes()).map(|(ms, _)| ms),
        pattern => parse_pattern(pattern, s),
    }
}

/// `s` read with a `DateTimeFormatter` pattern of numeric fields; `None`
/// for text fields (`MMM`, `EEE`), zones and anything else.
fn parse_pattern(pattern: &str, s: &str) -> Option<i64> {
    let p: Vec<char> = pattern.chars().collect();
    let b = s.as_bytes();
    let (mut year, mut month, mut day) = (None, 1, 1);
    let (mut h, mut mi, mut sec, mut millis) = (0, 0, 0, 0);
    let (mut i, mut at) = (0, 0);
    while i < p.len() {
        let c = p[i];
        if c == '\'' {
            let end = p[i + 1..].iter().position(|&x| x == '\'')? + i + 1;
            for &lit in &p[i + 1..end] {
                let mut buf = [0u8; 4];
                let lit = lit.encode_utf8(&mut buf).as_bytes();
                if !b[at..].starts_with(lit) {
                    return None;
                }
                at += lit.len();
            }
            i = end + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            let mut buf = [0u8; 4];
            let lit = c.encode_utf8(&mut buf).as_bytes();
            if !b[at..].starts_with(lit) {
                return None;
            }
            at += lit.len();
            i += 1;
            continue;
        }
        let run = p[i..].iter().take_while(|&&x| x == c).count();
        i += run;
        // One letter: 1 or more digits (a year up to 9); more: that many.
        let (min, max) = match (c, run) {
            ('y' | 'u', 1) => (1, 9),
            ('y' | 'u', 2) => (2, 2),
            (_, 1) => (1, 2),
            (_, n) => (n, n),
        };
        let n = b[at..]
            .iter()
            .take(max)
            .take_while(|x| x.is_ascii_digit())
            .count();
        if n < min {
            return None;
        }
        let v: i64 = s.get(at..at + n)?.parse().ok()?;
        at += n;
        match c {
            'y' | 'u' if run == 2 => year = Some(2000 + v),
            'y' | 'u' => year = Some(v),
            'M' if run <= 2 => month = v,
            'd' => day = v,
            'H' => h = v,
            'm' => mi = v,
            's' => sec = v,
            'S' => millis = i64::from(fraction_nanos(&b[at - n..at], 9) / 1_000_000),
            _ => return None,
        }
    }
    let year = year?;
    if at != b.len() {
        return None;
    }
    Some(civil_millis(year, month, day, h, mi, sec)? + millis)
}

/// Milliseconds since the epoch of a UTC calendar time to the second, or
/// `None` when a part is out of range (no leap seconds, as Java's).
fn civil_millis(year: i64, month: i64, day: i64, h: i64, mi: i64, sec: i64) -> Option<i64> {
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=59).contains(&sec)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_formats_read_one_instant() {
        let day = 1_671_235_200_000; // 2022-12-17T00:00:00Z
        assert_eq!(
            DateFormat::new("dd-MM-yyyy").parse_millis("17-12-2022"),
            Some(day)
        );
        assert_eq!(
            DateFormat::new("yyyy-MM-dd").parse_millis("2022-12-17"),
            Some(day)
        );
        assert_eq!(
            DateFormat::new("yyyy-MM-dd").parse_millis("17-12-2022"),
            None
        );
        let d = DateFormat::default();
        assert_eq!(d.parse_millis("1671235200000"), Some(day));
        assert_eq!(d.parse_millis("2022-12-17"), Some(day));
        assert_eq!(d.parse_millis("17-12-2022"), None);
        let mut both = DateFormat::new("dd-MM-yyyy");
        both.merge(&DateFormat::new("yyyy-MM-dd||epoch_millis"));
        for s in ["17-12-2022", "2022-12-17", "1671235200000"] {
            assert_eq!(both.parse_millis(s), Some(day), "{s}");
        }
        let t = DateFormat::new("yyyy/MM/dd HH:mm:ss.SSS");
        assert_eq!(t.parse_millis("1970/01/02 00:00:01.5"), None);
        assert_eq!(t.parse_millis("1970/01/02 00:00:01.500"), Some(86_401_500));
        assert_eq!(
            DateFormat::new("'day' d.M.yyyy").parse_millis("day 2.1.1970"),
            Some(86_400_000)
        );
        assert_eq!(
            DateFormat::new("dd-MM-yyyy").parse_millis("31-02-2022"),
            None
        );
        assert_eq!(
            DateFormat::new("dd MMM yyyy").parse_millis("17 Dec 2022"),
            None
        );
    }

    #[test]
    fn iso_forms_and_epoch_millis() {
        assert_eq!(parse_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_millis("1970-01-01"), Some(0));
        assert_eq!(parse_millis("1970"), Some(0));
        assert_eq!(parse_millis("1970-01-02T00:00:00.5Z"), Some(86_400_500));
        assert_eq!(parse_millis("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_millis("1970-01-01T01:00:00+0100"), Some(0));
        assert_eq!(
            parse_millis("2018-01-16T15:33:28.349Z"),
            Some(1_516_116_808_349)
        );
        assert_eq!(
            parse_millis("2018-01-16T15:33:28.349999999Z"),
            Some(1_516_116_808_349)
        );
        assert_eq!(parse_millis("1516116808349"), Some(1_516_116_808_349));
        // epoch_millis with a fraction of a millisecond (up to nanoseconds).
        assert_eq!(
            parse_millis("1516116808349.999999"),
            Some(1_516_116_808_349)
        );
        assert_eq!(parse_millis("1516116808349.5"), Some(1_516_116_808_349));
        assert_eq!(parse_millis("1516116808349."), None);
        assert_eq!(parse_millis(".5"), None);
        assert_eq!(parse_millis("1516116808349.1234567"), None);
        assert_eq!(parse_millis("2000-02-29"), Some(951_782_400_000));
        for bad in [
            "",
            "2001-02-29",
            "2017-13-01",
            "2017-08-30 20:47:33",
            "x",
            "2017-08-30T25:00:00Z",
            "2017-08-30T20:47:33Q",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn nanoseconds_within_the_millisecond_are_kept_by_parse_nanos() {
        assert_eq!(
            parse_nanos("1974-03-03T02:22:54.294365140Z"),
            Some((131_509_374_294, 365_140))
        );
        assert_eq!(
            parse_nanos("1974-03-03T02:22:54.2943Z"),
            Some((131_509_374_294, 300_000))
        );
        assert_eq!(
            parse_nanos("131509374294.365140"),
            Some((131_509_374_294, 365_140))
        );
        assert_eq!(
            parse_nanos("131509374294.5"),
            Some((131_509_374_294, 500_000))
        );
        assert_eq!(parse_nanos("131509374294"), Some((131_509_374_294, 0)));
        assert_eq!(parse_nanos("1974-03-03"), Some((131_500_800_000, 0)));
        assert_eq!(parse_nanos("1974-03-03T02:22:54.1234567890Z"), None);
    }

    #[test]
    fn date_fields() {
        for f in [
            "@timestamp",
            "process.start",
            "process.parent.start",
            "event.created",
            "event.ingested",
            "process.entry_leader.start",
        ] {
            assert!(is_date_field(f), "{f}");
        }
        for f in ["process.name", "event.category", "process.args_count"] {
            assert!(!is_date_field(f), "{f}");
        }
    }
}
