//! Request-time parsing and the ±15 minute clock-skew window.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::AuthError;

/// Maximum accepted difference between the request time and the server clock (spec §3.1, §3.2).
pub(crate) const MAX_SKEW: Duration = Duration::minutes(15);

/// Parses an HTTP date (`Date` / `x-fc-date`: RFC 1123 GMT; RFC 850 and asctime are tolerated).
pub(crate) fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    httpdate::parse_http_date(value.trim())
        .ok()
        .map(OffsetDateTime::from)
}

/// Parses `x-acs-date` (`%Y-%m-%dT%H:%M:%SZ`; other RFC 3339 forms are tolerated).
pub(crate) fn parse_acs_date(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    let strict = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    PrimitiveDateTime::parse(value, strict)
        .map(PrimitiveDateTime::assume_utc)
        .or_else(|_| OffsetDateTime::parse(value, &Rfc3339))
        .ok()
}

/// Checks that the request time given in header `name` (raw `value`, parsed with `parse`) lies within
/// [`MAX_SKEW`] of `now`, and returns it. An unparsable value is reported as skewed, with a message saying so.
pub(crate) fn check_skew(
    name: &str,
    value: &str,
    parse: fn(&str) -> Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, AuthError> {
    let Some(request_time) = parse(value) else {
        return Err(AuthError::RequestTimeTooSkewed(format!(
            "the {name} header value '{}' is not a valid date",
            value.escape_debug()
        )));
    };
    if (request_time - now).abs() <= MAX_SKEW {
        return Ok(request_time);
    }
    Err(AuthError::RequestTimeTooSkewed(format!(
        "the difference between the request time {} ({name}) and the server time {} exceeds 15 minutes",
        rfc3339(request_time),
        rfc3339(now)
    )))
}

fn rfc3339(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(&Rfc3339).unwrap_or_else(|_| format!("{utc}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_both_date_formats() {
        let t = datetime!(2006-01-02 15:04:05 UTC);
        assert_eq!(parse_http_date("Mon, 02 Jan 2006 15:04:05 GMT"), Some(t));
        assert_eq!(parse_acs_date("2006-01-02T15:04:05Z"), Some(t));
        assert_eq!(parse_acs_date("2006-01-02T17:04:05+02:00"), Some(t));
        assert_eq!(parse_http_date("2006-01-02T15:04:05Z"), None);
        assert_eq!(parse_acs_date("Mon, 02 Jan 2006 15:04:05 GMT"), None);
    }

    #[test]
    fn skew_window_is_inclusive_at_fifteen_minutes() {
        let t = datetime!(2006-01-02 15:04:05 UTC);
        let check = |now, ok: bool| {
            let r = check_skew("x-acs-date", "2006-01-02T15:04:05Z", parse_acs_date, now);
            assert_eq!(r.is_ok(), ok, "now {now}: {r:?}");
        };
        check(t + Duration::minutes(15), true);
        check(t - Duration::minutes(15), true);
        check(t + Duration::minutes(15) + Duration::seconds(1), false);
        check(t - Duration::minutes(15) - Duration::seconds(1), false);
        let err = check_skew("Date", "garbage", parse_http_date, t).unwrap_err();
        assert!(
            matches!(&err, AuthError::RequestTimeTooSkewed(m) if m.contains("garbage")),
            "{err:?}"
        );
    }
}
