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
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<After>,
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
        let after = match query.cursor.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(decode(text).ok_or_else(|| {
                AppError::Invalid(vec![FieldError::new(
                    "cursor",
                    "cursor is not one this API gave: pass a page's next_cursor back unchanged",
                )])
            })?),
        };
        Ok(PageRequest { limit, after })
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
    }
}
