//! Which files are accepted, decided from their content (never their name) against the
//! allow-list in SPEC.md: documents, spreadsheets, text, images, audio and video.

/// The accepted type for a file whose first bytes are `head`, or a message saying why not.
pub fn detect(head: &[u8], name: &str) -> Result<&'static str, String> {
    if head.is_empty() {
        return Err(format!("\"{name}\" is empty"));
    }
    if let Some(kind) = infer::get(head) {
        let accepted = match kind.mime_type() {
            "application/pdf" => "application/pdf",
            "application/msword" => "application/msword",
            "application/vnd.ms-excel" => "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint" => "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            "application/vnd.oasis.opendocument.text" => "application/vnd.oasis.opendocument.text",
            "application/vnd.oasis.opendocument.spreadsheet" => "application/vnd.oasis.opendocument.spreadsheet",
            "application/vnd.oasis.opendocument.presentation" => "application/vnd.oasis.opendocument.presentation",
            "image/jpeg" => "image/jpeg",
            "image/png" => "image/png",
            "image/webp" => "image/webp",
            "image/heif" | "image/heic" => "image/heic",
            "audio/mpeg" => "audio/mpeg",
            "audio/x-wav" | "audio/wav" => "audio/wav",
            "audio/m4a" | "audio/x-m4a" | "audio/mp4" => "audio/mp4",
            "audio/aac" => "audio/aac",
            "audio/ogg" | "audio/x-ogg" => "audio/ogg",
            "video/mp4" => "video/mp4",
            "video/webm" => "video/webm",
            "video/quicktime" => "video/quicktime",
            other => return Err(refusal(name, Some(other))),
        };
        return Ok(accepted);
    }
    if looks_like_text(head) {
        let csv = name.to_ascii_lowercase().ends_with(".csv");
        return Ok(if csv { "text/csv" } else { "text/plain" });
    }
    Err(refusal(name, None))
}

fn refusal(name: &str, detected: Option<&str>) -> String {
    let what = detected.map(|t| format!(" (it looks like {t})")).unwrap_or_default();
    format!(
        "\"{name}\" is not a file type we accept{what}. Upload a PDF, Word, Excel, PowerPoint or \
         OpenDocument file, plain text or CSV, a JPEG, PNG, WebP or HEIC image, MP3, WAV, M4A or OGG \
         audio, or MP4, WebM or MOV video"
    )
}

/// UTF-8 text without control characters other than tab, line breaks and form feed. The last
/// few bytes may be a character cut in half by the sniffing window.
fn looks_like_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(error) if error.error_len().is_none() && head.len() - error.valid_up_to() < 4 => {
            std::str::from_utf8(&head[..error.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    !text.is_empty() && text.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn types_come_from_content_not_name() {
        assert_eq!(detect(b"%PDF-1.7\n...", "report.txt").unwrap(), "application/pdf");
        assert_eq!(detect(b"date,agent\n2025-03-17,JE\n", "log.csv").unwrap(), "text/csv");
        assert_eq!(detect("café notes".as_bytes(), "notes").unwrap(), "text/plain");
        assert!(
            detect(b"MZ\x90\x00\x03\x00\x00\x00", "invoice.pdf").unwrap_err().contains("not a file type we accept")
        );
        assert!(detect(b"\x00\x01\x02binary", "x.txt").is_err());
        assert!(detect(b"", "empty.pdf").unwrap_err().contains("empty"));
    }
}
