//! Cursor pagination for the API's lists: `?limit=` (1 to 200, default 50) and `?cursor=`, the
//! opaque `next_cursor` of the page before. A cursor is the last row's sort key and id (keyset,
//! never OFFSET), so rows added or removed while a client walks the list neither repeat nor
//! drop out of the pages it has still to read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, FieldError};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// The page a client asks for, as sent.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items a page holds: 1 to 200, 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_cursor` of the page before; absent for the first page.
    pub cursor: Option<String>,
}

/// Where a page starts: after the row with this sort key and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

/// A page request, parsed: a malformed limit or cursor is a 422 naming the parameter.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    /// Where a list ordered by time starts (the cursor of such a list).
    pub after: Option<After>,
    /// Where a list ordered by a `Position` starts (the cursor of such a list).
    position: Option<Position>,
}

/// Which way a list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Oldest,
    Newest,
}

/// A row's place in a list ordered by something other than time (a name, a date, a sequence
/// number): the sort key as text that orders as the list does, then the id, to break ties.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub key: String,
    pub id: Uuid,
}

impl Position {
    pub fn new(key: impl Into<String>, id: Uuid) -> Self {
        Position { key: key.into(), id }
    }

    /// A time as a key that sorts as the time does.
    pub fn time(at: DateTime<Utc>, id: Uuid) -> Self {
        Position::new(format!("{:020}", at.timestamp_micros().max(0)), id)
    }

    /// A number (zero or more) as a key that sorts as the number does.
    pub fn number(n: i64, id: Uuid) -> Self {
        Position::new(format!("{:020}", n.max(0)), id)
    }

    /// A key of several columns (a date, then a name …), for a keyset query that compares them
    /// in turn; `PageRequest::after_parts` reads it back.
    pub fn parts(parts: &[&str], id: Uuid) -> Self {
        Position::new(serde_json::to_string(parts).unwrap_or_default(), id)
    }

    /// A name as a key, in the case-blind order the pages show.
    pub fn name(text: &str, id: Uuid) -> Self {
        Position::new(text.to_lowercase(), id)
    }
}

impl PageRequest {
    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page of `rows` (fetched with `fetch()`), and the cursor after its last row.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> After) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more { rows.last().map(|row| encode(key(row))) } else { None };
        Page { items: rows, next_cursor }
    }

    /// The page of a list the domain reads whole (one centre's or one portfolio's rows, already
    /// bounded): ordered by `position` in `order`, starting strictly after the cursor's position,
    /// so a row added or removed meanwhile neither repeats nor hides another. A cursor from a
    /// list ordered by time (`After`) is read as the same time.
    pub fn page_of<T>(&self, rows: Vec<T>, order: Order, position: impl Fn(&T) -> Position) -> Page<T> {
        let mut keyed: Vec<(Position, T)> = rows.into_iter().map(|row| (position(&row), row)).collect();
        keyed.sort_by(|a, b| match order {
            Order::Oldest => a.0.cmp(&b.0),
            Order::Newest => b.0.cmp(&a.0),
        });
        let start = self.start();
        let page: Vec<(Position, T)> = keyed
            .into_iter()
            .filter(|(at, _)| match &start {
                None => true,
                Some(start) => match order {
                    Order::Oldest => at > start,
                    Order::Newest => at < start,
                },
            })
            .take(self.fetch() as usize)
            .collect();
        self.keyed_page(page)
    }

    /// The page of rows a keyset query fetched (with `fetch()`) after `position()`, each with its
    /// position; the cursor is the last one's.
    pub fn keyed_page<T>(&self, mut rows: Vec<(Position, T)>) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more { rows.last().map(|(at, _)| encode_position(at)) } else { None };
        Page { items: rows.into_iter().map(|(_, row)| row).collect(), next_cursor }
    }

    /// Where the page starts, for a keyset query: strictly after this position.
    pub fn position(&self) -> Option<Position> {
        self.start()
    }

    /// The start as a number (for lists ordered by a sequence), or a 422 naming the cursor.
    pub fn after_number(&self) -> Result<Option<i64>, AppError> {
        match self.start() {
            None => Ok(None),
            Some(position) => position.key.parse().map(Some).map_err(|_| bad_cursor()),
        }
    }

    /// The start as a time (for lists ordered by time in SQL), or a 422 naming the cursor.
    pub fn after_time(&self) -> Result<Option<After>, AppError> {
        match self.start() {
            None => Ok(None),
            Some(position) => {
                let micros: i64 = position.key.parse().map_err(|_| bad_cursor())?;
                let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad_cursor)?;
                Ok(Some(After { at, id: position.id }))
            }
        }
    }

    /// The start as the `n` parts of a composite key made by `Position::parts` (for lists
    /// ordered by several columns in SQL), or a 422 naming the cursor.
    pub fn after_parts(&self, n: usize) -> Result<Option<(Vec<String>, Uuid)>, AppError> {
        match self.start() {
            None => Ok(None),
            Some(position) => match serde_json::from_str::<Vec<String>>(&position.key) {
                Ok(parts) if parts.len() == n => Ok(Some((parts, position.id))),
                _ => Err(bad_cursor()),
            },
        }
    }

    fn start(&self) -> Option<Position> {
        self.position.clone().or_else(|| self.after.map(|a| Position::time(a.at, a.id)))
    }
}

impl TryFrom<&PageQuery> for PageRequest {
    type Error = AppError;

    fn try_from(query: &PageQuery) -> Result<Self, AppError> {
        let limit = match query.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(AppError::Invalid(vec![FieldError::new(
                        "limit",
                        "limit must be a whole number from 1 to 200",
                    )]));
                }
            },
        };
        let (after, position) = match query.cursor.as_deref().map(str::trim) {
            None | Some("") => (None, None),
            Some(text) => match decode_position(text) {
                Some(position) => (None, Some(position)),
                None => (Some(decode(text).ok_or_else(bad_cursor)?), None),
            },
        };
        Ok(PageRequest { limit, after, position })
    }
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn encode(after: After) -> String {
    let key = format!("{}|{}", after.at.timestamp_micros(), after.id);
    URL_SAFE_NO_PAD.encode(key)
}

/// The 422 for a cursor this API did not give (or gave for another list).
pub fn bad_cursor() -> AppError {
    AppError::Invalid(vec![FieldError::new(
        "cursor",
        "cursor is not one this API gave: pass a page's next_cursor back unchanged",
    )])
}

/// A position cursor: `p:` then the key, `|`, the id (the key may hold `|`; the id never does).
fn encode_position(position: &Position) -> String {
    URL_SAFE_NO_PAD.encode(format!("p:{}|{}", position.key, position.id))
}

fn decode_position(text: &str) -> Option<Position> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let key = String::from_utf8(bytes).ok()?;
    let (key, id) = key.strip_prefix("p:")?.rsplit_once('|')?;
    Some(Position { key: key.to_string(), id: id.parse().ok()? })
}

fn decode(text: &str) -> Option<After> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let key = String::from_utf8(bytes).ok()?;
    let (micros, id) = key.split_once('|')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some(After { at, id: id.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_comes_back_as_the_row_it_was_made_from_and_a_tampered_one_does_not() {
        let after = After { at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(), id: Uuid::new_v4() };
        let cursor = encode(after);
        assert_eq!(decode(&cursor), Some(after));
        assert_eq!(decode(&format!("{cursor}x")), None);
        assert_eq!(decode("not a cursor"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("12|not-a-uuid")), None);
        let position = Position::name("O'Brien | Ann", Uuid::new_v4());
        assert_eq!(decode_position(&encode_position(&position)), Some(position));
        assert_eq!(decode_position(&cursor), None);
    }

    fn request(limit: i64, cursor: Option<String>) -> PageRequest {
        PageRequest::try_from(&PageQuery { limit: Some(limit.to_string()), cursor }).unwrap()
    }

    #[test]
    fn a_cursor_reads_back_as_the_keyset_it_was_made_from_and_one_from_another_list_is_refused() {
        let id = Uuid::new_v4();
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let time_cursor = encode_position(&Position::time(at, id));
        let parts_cursor = encode_position(&Position::parts(&["2026-03-31", "O'Brien | \"Ann\""], id));
        let old_cursor = encode(After { at, id });
        assert_eq!(request(5, Some(time_cursor.clone())).after_time().unwrap(), Some(After { at, id }));
        assert_eq!(request(5, Some(old_cursor)).after_time().unwrap(), Some(After { at, id }), "an After cursor too");
        assert_eq!(
            request(5, Some(parts_cursor.clone())).after_parts(2).unwrap(),
            Some((vec!["2026-03-31".to_string(), "O'Brien | \"Ann\"".to_string()], id))
        );
        assert_eq!(request(5, None).after_parts(2).unwrap(), None);
        assert_eq!(request(5, None).after_time().unwrap(), None);
        // A cursor of one list's shape given to another is a 422, not a wrong page.
        for refused in [
            request(5, Some(parts_cursor.clone())).after_time().err(),
            request(5, Some(parts_cursor)).after_parts(3).err(),
            request(5, Some(time_cursor)).after_parts(2).err(),
        ] {
            assert!(
                matches!(refused, Some(AppError::Invalid(ref errors)) if errors[0].field == "cursor"),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn a_list_read_whole_pages_in_its_order_and_a_row_removed_under_the_cursor_hides_nothing() {
        let ids: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
        let rows: Vec<(String, Uuid)> = ids.iter().enumerate().map(|(n, id)| (format!("name {n}"), *id)).collect();
        let key = |row: &(String, Uuid)| Position::name(&row.0, row.1);
        let first = request(3, None).page_of(rows.clone(), Order::Oldest, key);
        assert_eq!(first.items.iter().map(|r| r.1).collect::<Vec<_>>(), ids[..3]);
        // The last row of the first page goes before the client asks for the next.
        let fewer: Vec<_> = rows.iter().filter(|r| r.1 != ids[2]).cloned().collect();
        let second = request(3, first.next_cursor.clone()).page_of(fewer, Order::Oldest, key);
        assert_eq!(second.items.iter().map(|r| r.1).collect::<Vec<_>>(), ids[3..6]);
        let third = request(3, second.next_cursor.clone()).page_of(rows.clone(), Order::Oldest, key);
        assert_eq!(third.items.iter().map(|r| r.1).collect::<Vec<_>>(), ids[6..]);
        assert_eq!(third.next_cursor, None);
        let newest = request(7, None).page_of(rows, Order::Newest, key);
        assert_eq!(newest.items.first().map(|r| r.1), Some(ids[6]));
        assert_eq!(newest.next_cursor, None, "exactly a page: no next");
    }
}
