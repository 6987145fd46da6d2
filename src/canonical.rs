//! Canonical JSON: no whitespace, every object's keys in ascending order of their UTF-8 bytes,
//! strings and numbers as serde_json writes them (minimal escapes). The same document always gives
//! the same text, whatever order the database or a tool that rewrote it put the keys in. The audit
//! chain's hashes and the export manifests' record hashes are taken of it.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Appends `value` as canonical JSON to `out`, in one buffer (the audit trail checks fifty events'
/// hashes a page, so this allocates nothing but the keys' order).
pub fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                scalar(&key.as_str(), out);
                out.push(b':');
                write(value, out);
            }
            out.push(b'}');
        }
        Value::Array(values) => {
            out.push(b'[');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(value, out);
            }
            out.push(b']');
        }
        other => scalar(other, out),
    }
}

/// A string, number, boolean or null as serde_json writes it.
fn scalar(value: &impl serde::Serialize, out: &mut Vec<u8>) {
    // Writing a string, a number, a boolean or null into a Vec cannot fail.
    serde_json::to_writer(out, value).expect("a JSON scalar serialises");
}

/// The SHA-256, in lower-case hex, of `value` as canonical JSON.
pub fn sha256_hex(value: &Value) -> String {
    let mut text = Vec::with_capacity(256);
    write(value, &mut text);
    hex::encode(Sha256::digest(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &Value) -> String {
        let mut out = Vec::new();
        write(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_are_sorted_at_every_level_and_nothing_is_spaced() {
        let value = serde_json::json!({"b": [1, {"z": null, "a": true}], "a": "x\"y\n", "é": 1.5, "A": -2});
        assert_eq!(text(&value), r#"{"A":-2,"a":"x\"y\n","b":[1,{"a":true,"z":null}],"é":1.5}"#);
    }

    #[test]
    fn the_same_document_in_another_order_gives_the_same_text() {
        let one: Value = serde_json::from_str(r#"{"evidence_id": "e1", "criteria": ["1.1", "2.3"], "n": 10}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{"n":10,"criteria":["1.1","2.3"],"evidence_id":"e1"}"#).unwrap();
        assert_eq!(text(&one), text(&two));
        assert_eq!(sha256_hex(&one), sha256_hex(&two));
        assert_eq!(sha256_hex(&serde_json::json!({})), hex::encode(Sha256::digest(b"{}")));
    }

    /// What the audit chain and the export manifests have always hashed this document to.
    #[test]
    fn the_digest_is_what_earlier_versions_recorded() {
        let value = serde_json::json!({"outcome": "met", "criterion": "1.1", "notes": ["a\"b", 2.5, null]});
        assert_eq!(sha256_hex(&value), "4e3fac2e303cf4952607c3fb52945dfe03c92c5dd84049d9cc285a8726537abf");
    }
}
