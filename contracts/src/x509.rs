//! A certificate's subject and expiry as values, not display text: whoever reads a
//! [`CertRecord`](crate::pki::CertRecord) (the graph, status, a plugin) compares times and
//! looks up attributes without parsing anything.
//!
//! In the context a time is RFC 3339 text in UTC (`2027-11-25T20:38:22Z`) and a subject the
//! list of its attributes in order (`[["C", "UK"], ["O", "system:masters"], ["CN", "admin"]]`).
//! State files written before hold OpenSSL's display forms (`Nov 25 20:38:22 2027 GMT`,
//! `C=UK, O=system:masters, CN=admin`); those still read, and the next `ca`/`certs` run
//! records the typed forms.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SECONDS_PER_DAY: i64 = 86_400;
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A moment to the second, in UTC, as X.509 validity dates are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CertTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    unix: i64,
}

impl CertTime {
    pub fn from_unix(unix: i64) -> CertTime {
        CertTime { unix }
    }

    pub fn unix(self) -> i64 {
        self.unix
    }

    /// Whether this moment comes within `days` days after `now` (or is already past).
    pub fn within_days(self, now: CertTime, days: u32) -> bool {
        self.unix - now.unix < i64::from(days) * SECONDS_PER_DAY
    }

    /// `2027-11-25T20:38:22Z` or, as state files before hold, OpenSSL's `Nov 25 20:38:22 2027 GMT`.
    pub fn parse(text: &str) -> Option<CertTime> {
        Self::parse_rfc3339(text).or_else(|| Self::parse_openssl(text))
    }

    fn parse_rfc3339(text: &str) -> Option<CertTime> {
        let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
        let [year, month, day] = numbers(date, '-')?;
        Self::at(year, month, day, time)
    }

    fn parse_openssl(text: &str) -> Option<CertTime> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [month, day, time, year, "GMT"] = parts.as_slice() else { return None };
        let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
        Self::at(year.parse().ok()?, month, day.parse().ok()?, time)
    }

    /// The moment of a date and an `HH:MM:SS` time, each in its range.
    fn at(year: i64, month: i64, day: i64, time: &str) -> Option<CertTime> {
        let [hours, minutes, seconds] = numbers(time, ':')?;
        let in_range = (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && (0..24).contains(&hours)
            && (0..60).contains(&minutes)
            && (0..61).contains(&seconds);
        in_range.then(|| CertTime {
            unix: days_from_civil(year, month, day) * SECONDS_PER_DAY + hours * 3600 + minutes * 60 + seconds,
        })
    }
}

/// `text` split at `separator` into exactly three numbers.
fn numbers(text: &str, separator: char) -> Option<[i64; 3]> {
    let parts: Vec<i64> = text.split(separator).map(|p| p.parse().ok()).collect::<Option<_>>()?;
    parts.try_into().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for CertTime {
    /// RFC 3339 in UTC: `2027-11-25T20:38:22Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.unix.div_euclid(SECONDS_PER_DAY));
        let seconds = self.unix.rem_euclid(SECONDS_PER_DAY);
        let (hours, minutes, seconds) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
        write!(f, "{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}Z")
    }
}

impl Serialize for CertTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CertTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CertTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        CertTime::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a UTC time like 2027-11-25T20:38:22Z")))
    }
}

impl JsonSchema for CertTime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CertTime".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A UTC time, RFC 3339 (`2027-11-25T20:38:22Z`); state files written before hold OpenSSL's `Nov 25 20:38:22 2027 GMT`.",
            "type": "string"
        })
    }
}

/// A distinguished name: its attributes (`C`, `ST`, `L`, `O`, `OU`, `CN`, ...) in order, an
/// attribute possibly more than once (`O` of a node's groups).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub attributes: Vec<(String, String)>,
}

impl Subject {
    /// The first value of `attribute` (`CN`, `O`, ...).
    pub fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes.iter().find(|(name, _)| name == attribute).map(|(_, value)| value.as_str())
    }

    /// OpenSSL's one-line text, as state files before hold it: `C=UK, O=system:masters, CN=admin`.
    fn from_openssl_text(text: &str) -> Subject {
        let attributes = text
            .split(", ")
            .filter_map(|part| part.split_once('='))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Subject { attributes }
    }
}

impl fmt::Display for Subject {
    /// `C=UK, O=system:masters, CN=admin`, for people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.attributes.iter().map(|(name, value)| format!("{name}={value}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// What a context may hold for a subject: the typed list, or the text of state files before.
#[derive(Deserialize)]
#[serde(untagged)]
enum SubjectForm {
    Attributes(Vec<(String, String)>),
    OpensslText(String),
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.attributes.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Subject, D::Error> {
        Ok(match SubjectForm::deserialize(deserializer)? {
            SubjectForm::Attributes(attributes) => Subject { attributes },
            SubjectForm::OpensslText(text) => Subject::from_openssl_text(&text),
        })
    }
}

impl JsonSchema for Subject {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Subject".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A distinguished name's attributes in order, each [attribute, value] (`[[\"C\", \"UK\"], [\"CN\", \"admin\"]]`); state files written before hold OpenSSL's text `C=UK, CN=admin`.",
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "items": { "type": "string" },
                        "minItems": 2,
                        "maxItems": 2
                    }
                },
                { "type": "string" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_both_forms_and_write_as_rfc3339() {
        let cases = [
            ("Jan  1 00:00:00 1970 GMT", "1970-01-01T00:00:00Z", 0),
            ("Nov 25 20:38:22 2026 GMT", "2026-11-25T20:38:22Z", 1_795_639_102),
            ("Feb 29 12:00:00 2028 GMT", "2028-02-29T12:00:00Z", 1_835_438_400),
            ("Dec 31 23:59:59 9999 GMT", "9999-12-31T23:59:59Z", 253_402_300_799),
        ];
        for (openssl, rfc3339, unix) in cases {
            assert_eq!(CertTime::parse(openssl), Some(CertTime::from_unix(unix)), "{openssl}");
            assert_eq!(CertTime::parse(rfc3339), Some(CertTime::from_unix(unix)), "{rfc3339}");
            assert_eq!(CertTime::from_unix(unix).to_string(), rfc3339);
        }
        for bad in ["error", "Foo 29 12:00:00 2028 GMT", "2027-02-29T00:00:00Z", "2027-01-01T24:00:00Z", "2027-01-01"] {
            assert_eq!(CertTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn within_days_counts_from_now() {
        let now = CertTime::parse("2026-11-25T00:00:00Z").unwrap();
        assert!(CertTime::parse("2026-12-20T00:00:00Z").unwrap().within_days(now, 30));
        assert!(!CertTime::parse("2026-12-30T00:00:00Z").unwrap().within_days(now, 30));
        assert!(CertTime::parse("2026-11-01T00:00:00Z").unwrap().within_days(now, 0), "already past");
    }

    #[test]
    fn subjects_read_in_both_forms_and_write_as_a_list() {
        let typed: Subject =
            serde_json::from_str(r#"[["C","UK"],["O","system:nodes"],["O","b, c"],["CN","x"]]"#).unwrap();
        assert_eq!(typed.get("O"), Some("system:nodes"));
        assert_eq!(typed.attributes[2].1, "b, c", "a value may hold what the text form separates with");
        let before: Subject = serde_json::from_str(r#""C=UK, O=system:masters, CN=admin""#).unwrap();
        assert_eq!((before.get("CN"), before.get("O")), (Some("admin"), Some("system:masters")));
        assert_eq!(serde_json::to_string(&before).unwrap(), r#"[["C","UK"],["O","system:masters"],["CN","admin"]]"#);
        assert_eq!(before.to_string(), "C=UK, O=system:masters, CN=admin");
    }
}
