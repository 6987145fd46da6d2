//! Moving unit specifications in and out: our own unit file (TOML) and IMS CASE 1.0 JSON, both
//! read into the same checked `UnitFile` and stored by `catalogue::store`, so either format
//! imported twice changes nothing. The command line, the API and the administrators' units page
//! all go through these functions.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::{ImportOutcome, UnitFile, case, export, find_unit};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{AppError, AppResult, FieldError};

/// A unit-file or CASE package larger than this is refused unread.
pub const MAX_IMPORT_BYTES: usize = case::MAX_PACKAGE_BYTES;

/// The two formats a unit travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Our unit file (TOML), as in `units/`.
    Unit,
    /// IMS CASE 1.0 JSON (a CFPackage).
    Case,
}

impl Format {
    /// `unit` or `case` (also `toml` and `json`); anything else is refused with the choices.
    pub fn parse(text: &str) -> Result<Format, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "unit" | "unit-file" | "toml" => Ok(Format::Unit),
            "case" | "json" => Ok(Format::Case),
            other => {
                Err(format!("\"{other}\" is not a unit format: use unit (our TOML unit file) or case (IMS CASE JSON)"))
            }
        }
    }

    /// From the content: a CASE package is a JSON object, a unit file is TOML (which never
    /// starts with `{`).
    pub fn detect(bytes: &[u8]) -> Format {
        let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        match text.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Format::Case,
            _ => Format::Unit,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Unit => "unit",
            Format::Case => "case",
        }
    }
}

/// What an import did, for people and the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// The unit's code, e.g. `CC20`.
    pub code: String,
    /// `added`, `updated` or `unchanged`.
    #[schema(value_type = String, example = "added")]
    pub outcome: &'static str,
    pub format: Format,
}

/// Reads a unit from `bytes` in `format` (detected from the content when not given), checked.
pub fn read(bytes: &[u8], format: Option<Format>) -> Result<(UnitFile, Format), String> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(format!("the file is larger than the {} MiB a unit specification may be", MAX_IMPORT_BYTES >> 20));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    let format = format.unwrap_or_else(|| Format::detect(bytes));
    let file = match format {
        Format::Case => case::parse(bytes)?,
        Format::Unit => {
            let text = std::str::from_utf8(bytes).map_err(|_| "the unit file is not UTF-8 text".to_string())?;
            UnitFile::parse(text).map_err(|e| format!("{e:#}"))?
        }
    };
    Ok((file, format))
}

/// Imports a unit in either format in the caller's transaction, with its audit event (also when
/// nothing changed, so the attempt is on record). A problem with the file is `Invalid` on the
/// field `file`, naming the problem; nothing is stored then.
pub async fn import_unit(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    bytes: &[u8],
    format: Option<Format>,
) -> AppResult<ImportReport> {
    let (file, format) =
        read(bytes, format).map_err(|message| AppError::Invalid(vec![FieldError::new("file", message)]))?;
    let sha256 = hex::encode(Sha256::digest(bytes));
    let (code, outcome) = super::store(conn, file, &sha256).await?;
    let outcome = match outcome {
        ImportOutcome::Added => "added",
        ImportOutcome::Updated => "updated",
        ImportOutcome::Unchanged => "unchanged",
    };
    let unit = find_unit(conn, Some(&code), None).await?;
    audit::record(
        conn,
        Event::new(actor, "unit.imported", "unit", Some(unit.summary.id)).details(serde_json::json!({
            "code": code,
            "outcome": outcome,
            "format": format,
            "sha256": sha256,
        })),
    )
    .await?;
    Ok(ImportReport { code, outcome, format })
}

/// A unit exported: a file name, its media type and its text.
#[derive(Debug, Clone)]
pub struct ExportedUnit {
    pub file_name: String,
    pub content_type: &'static str,
    pub text: String,
}

/// The unit with this code in `format`. The same unit always gives the same bytes.
pub async fn export_unit(conn: &mut PgConnection, code: &str, format: Format) -> AppResult<ExportedUnit> {
    let unit = find_unit(conn, Some(code), None).await?;
    let stem: String =
        unit.summary.code.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    Ok(match format {
        Format::Unit => ExportedUnit {
            file_name: format!("{stem}.toml"),
            content_type: "application/toml; charset=utf-8",
            text: export::unit_file_text(&UnitFile::from(&unit)).map_err(AppError::Unexpected)?,
        },
        Format::Case => {
            let changed = sqlx::query_scalar!("SELECT imported_at FROM units WHERE id = $1", unit.summary.id)
                .fetch_one(&mut *conn)
                .await?;
            ExportedUnit {
                file_name: format!("{stem}-case.json"),
                content_type: "application/json",
                text: case::package_text(&unit, changed),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_told_from_the_content() {
        assert_eq!(Format::detect(b"  \n{\"CFDocument\": {}}"), Format::Case);
        assert_eq!(Format::detect(b"\xef\xbb\xbf{}"), Format::Case);
        assert_eq!(Format::detect(b"# unit\ncode = \"X\""), Format::Unit);
        assert!(Format::parse("xml").unwrap_err().contains("use unit"));
        assert!(read(b"   ", None).unwrap_err().contains("empty"));
        assert!(read(b"code = ", Some(Format::Unit)).unwrap_err().contains("not a valid unit file"));
    }
}
