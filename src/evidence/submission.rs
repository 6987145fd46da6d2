//! Reading an evidence upload (multipart): text fields kept small in memory, each file streamed
//! to the store as it arrives. The HTML form and the API send the same parts, except that the
//! API puts the item's fields in one `metadata` JSON part.

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};

use super::RawEvidence;
use super::storage::{ChunkSource, FileStore, StagedFile};
use crate::auth::csrf::{self, PendingCheck};
use crate::error::{AppError, AppResult, FieldError};

const MAX_TEXT_FIELD: usize = 64 * 1024;
const MAX_FILES: usize = 20;

/// A received upload: the item's fields and its staged files (and, editing a draft, the files
/// the learner ticked to remove).
pub struct Submission {
    pub raw: RawEvidence,
    pub files: Vec<StagedFile>,
    pub remove_files: Vec<uuid::Uuid>,
}

impl ChunkSource for Field<'_> {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AppError> {
        self.chunk().await.map_err(interrupted)
    }
}

fn interrupted(error: MultipartError) -> AppError {
    if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge(error.body_text())
    } else {
        AppError::BadRequest(format!("The upload could not be read ({}); nothing was saved", error.body_text()))
    }
}

async fn read_text(field: &mut Field<'_>, name: &str) -> AppResult<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(interrupted)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_TEXT_FIELD {
            return Err(AppError::invalid(name, format!("{name} must be {} KiB or less", MAX_TEXT_FIELD / 1024)));
        }
    }
    String::from_utf8(bytes).map_err(|_| AppError::invalid(name, format!("{name} is not valid UTF-8 text")))
}

/// Reads every part. Files larger than `max_file` or of a refused type stop the upload at once;
/// any error drops (and so deletes) the files staged so far.
/// `csrf`, when given, must arrive as the first part: nothing else is read before it.
pub async fn read(
    mut multipart: Multipart,
    store: &FileStore,
    max_file: u64,
    csrf: Option<&PendingCheck>,
) -> AppResult<Submission> {
    if let Some(PendingCheck(expected)) = csrf {
        let mut field = multipart.next_field().await.map_err(interrupted)?.ok_or_else(csrf::rejection)?;
        if field.name() != Some(csrf::FIELD) {
            return Err(csrf::rejection());
        }
        let given = read_text(&mut field, csrf::FIELD).await?;
        if !csrf::matches(expected, &given) {
            return Err(csrf::rejection());
        }
    }
    let mut raw = RawEvidence::default();
    let mut files = Vec::new();
    let mut remove_files = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(interrupted)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" | "files" => {
                let file_name = field.file_name().unwrap_or("").trim().to_string();
                if file_name.is_empty() {
                    // A file input left empty still sends a part; skip it.
                    while field.chunk().await.map_err(interrupted)?.is_some() {}
                    continue;
                }
                if files.len() == MAX_FILES {
                    return Err(AppError::invalid(
                        "file",
                        format!("An evidence item can hold at most {MAX_FILES} files"),
                    ));
                }
                let file_name = clean_file_name(&file_name);
                files.push(store.stage(&file_name, &mut field, max_file).await?);
            }
            "metadata" => {
                let text = read_text(&mut field, "metadata").await?;
                raw = serde_json::from_str(&text).map_err(|e| {
                    AppError::Invalid(vec![FieldError::new("metadata", format!("metadata is not valid: {e}"))])
                })?;
            }
            "title" => raw.title = read_text(&mut field, "title").await?,
            "description" => raw.description = read_text(&mut field, "description").await?,
            "method" => raw.method = read_text(&mut field, "method").await?,
            "occurred_on" => raw.occurred_on = read_text(&mut field, "occurred_on").await?,
            "occurred_until" => raw.occurred_until = read_text(&mut field, "occurred_until").await?,
            "criteria" => raw.criteria.push(read_text(&mut field, "criteria").await?),
            "declaration" => raw.declaration = ticked(&read_text(&mut field, "declaration").await?),
            "third_party_confirmed" => {
                raw.third_party_confirmed = ticked(&read_text(&mut field, "third_party_confirmed").await?)
            }
            "help_received" => raw.help_received = read_text(&mut field, "help_received").await?,
            "ai_use" => raw.ai_use = read_text(&mut field, "ai_use").await?,
            "kind" => raw.kind = read_text(&mut field, "kind").await?,
            "held_at" => raw.held_at = read_text(&mut field, "held_at").await?,
            "held_by" => raw.held_by = read_text(&mut field, "held_by").await?,
            "confirmed_by" => raw.confirmed_by = read_text(&mut field, "confirmed_by").await?,
            "assessment_location" => raw.assessment_location = read_text(&mut field, "assessment_location").await?,
            "remove_file" => {
                let text = read_text(&mut field, "remove_file").await?;
                remove_files.push(text.trim().parse().map_err(|_| {
                    AppError::invalid("remove_file", "A file to remove is not one of this draft's files")
                })?);
            }
            "intent" => raw.draft = read_text(&mut field, "intent").await? == "draft",
            "previous_version" => {
                let text = read_text(&mut field, "previous_version").await?;
                raw.previous_version = match text.trim() {
                    "" => None,
                    id => Some(id.parse().map_err(|_| AppError::invalid("previous_version", "Not an evidence item"))?),
                };
            }
            other => {
                let value = read_text(&mut field, "field").await?;
                if let Some(number) = other.strip_prefix("note-") {
                    raw.mappings.entry(number.to_string()).or_default().note = value;
                } else if let Some(number) = other.strip_prefix("where-") {
                    raw.mappings.entry(number.to_string()).or_default().location = value;
                }
            }
        }
    }
    Ok(Submission { raw, files, remove_files })
}

fn ticked(value: &str) -> bool {
    matches!(value, "yes" | "on" | "true")
}

/// The last path segment of a browser-supplied name, without control characters, at most 255
/// characters.
fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    if cleaned.trim().is_empty() || cleaned == "." || cleaned == ".." { "file".into() } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::clean_file_name;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_file_name("C:\\Users\\jo\\call.wav"), "call.wav");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("re\u{0}port\n.pdf"), "report.pdf");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name(&"a".repeat(1000)).len(), 255);
    }
}
