//! Budget periods: the calendar day, week (from Monday), month, or all time, in UTC or a budget's
//! own time zone.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use crate::config::BudgetPeriod;

/// One period: where it started and, unless it is `total`, where it ends (epoch milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The period's first instant.
    pub start_ms: i64,
    /// The next period's first instant; `None` for `total`.
    pub end_ms: Option<i64>,
}

/// The period of `kind` that holds `now_ms`, on the calendar of `tz` (UTC when `None` or unknown;
/// the loader refuses unknown zones).
pub fn window(kind: BudgetPeriod, tz: Option<&str>, now_ms: i64) -> Window {
    if kind == BudgetPeriod::Total {
        return Window {
            start_ms: 0,
            end_ms: None,
        };
    }
    let zone = tz.and_then(|name| TimeZone::get(name).ok()).unwrap_or(TimeZone::UTC);
    let Ok(now) = Timestamp::from_millisecond(now_ms) else {
        return Window {
            start_ms: 0,
            end_ms: None,
        };
    };
    let here = now.to_zoned(zone);
    bounds(kind, &here).unwrap_or(Window {
        start_ms: 0,
        end_ms: None,
    })
}

fn bounds(kind: BudgetPeriod, here: &Zoned) -> Option<Window> {
    let today = here.start_of_day().ok()?;
    let (start, end) = match kind {
        BudgetPeriod::Daily => {
            let end = today.checked_add(1.day()).ok()?;
            (today, end)
        }
        BudgetPeriod::Weekly => {
            let back = i64::from(here.weekday().to_monday_zero_offset());
            let start = today.checked_sub(back.days()).ok()?;
            debug_assert_eq!(start.weekday(), Weekday::Monday);
            let end = start.checked_add(1.week()).ok()?;
            (start, end)
        }
        BudgetPeriod::Monthly => {
            let first = today.first_of_month().ok()?.start_of_day().ok()?;
            let end = first.checked_add(1.month()).ok()?;
            (first, end)
        }
        BudgetPeriod::Total => return None,
    };
    Some(Window {
        start_ms: start.timestamp().as_millisecond(),
        end_ms: Some(end.timestamp().as_millisecond()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn periods_follow_the_utc_calendar() {
        let now = ms("2026-12-09T15:30:00Z"); // a Wednesday
        let d = window(BudgetPeriod::Daily, None, now);
        assert_eq!(
            (d.start_ms, d.end_ms),
            (ms("2026-12-09T00:00:00Z"), Some(ms("2026-12-10T00:00:00Z")))
        );
        let w = window(BudgetPeriod::Weekly, None, now);
        assert_eq!(
            (w.start_ms, w.end_ms),
            (ms("2026-12-07T00:00:00Z"), Some(ms("2026-12-14T00:00:00Z")))
        );
        let m = window(BudgetPeriod::Monthly, None, ms("2026-12-31T23:59:59Z"));
        assert_eq!(
            (m.start_ms, m.end_ms),
            (ms("2026-12-01T00:00:00Z"), Some(ms("2027-01-01T00:00:00Z")))
        );
        assert_eq!(window(BudgetPeriod::Total, None, now).end_ms, None);
    }

    #[test]
    fn a_time_zone_moves_the_boundaries() {
        // 02:00 UTC on the 1st is still the 30th of November in New York.
        let m = window(
            BudgetPeriod::Monthly,
            Some("America/New_York"),
            ms("2026-12-01T02:00:00Z"),
        );
        assert_eq!(m.start_ms, ms("2026-11-01T04:00:00Z"), "EDT until 1 November");
        assert_eq!(m.end_ms, Some(ms("2026-12-01T05:00:00Z")), "EST from then");
        let d = window(BudgetPeriod::Daily, Some("Asia/Tokyo"), ms("2026-12-09T15:30:00Z"));
        assert_eq!(d.start_ms, ms("2026-12-09T15:00:00Z"));
    }
}
