//! LEAP2A packages a learner brings from another e-portfolio: a bare `leap2a.xml` or a ZIP,
//! opened by `export::leap2a_import::open_package` before anything is planned or stored.
//! Whatever the bytes, and whatever the ZIP's members are called, opening answers a feed or a
//! message; nothing is ever read from outside the package.

use std::io::{Cursor, Write};

use eportfolio::export::leap2a_import::{open_package, read_feed};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

use crate::support::{Input, corpus, fuzz, is_precise, mutated, parser_runner};

/// The upload limit the server would apply; small, so an inflating ZIP is caught quickly.
const LIMIT: u64 = 8 * 1024 * 1024;

fn feeds() -> Vec<Vec<u8>> {
    corpus("leap2a").into_iter().filter(|seed| seed.starts_with(b"<")).collect()
}

/// Opens `bytes` as an uploaded package would be, from a file.
fn opens_cleanly(dir: &tempfile::TempDir, bytes: &[u8]) -> Result<Option<bool>, TestCaseError> {
    let path = dir.path().join("package");
    std::fs::write(&path, bytes).expect("a temporary package");
    match open_package(&path, LIMIT) {
        Ok((_, zipped)) => Ok(Some(zipped)),
        Err(message) => {
            prop_assert!(is_precise(&message), "an unhelpful refusal: {message:?}");
            Ok(None)
        }
    }
}

#[test]
fn every_seed_in_the_corpus_opens() {
    let dir = tempfile::tempdir().unwrap();
    for (index, seed) in corpus("leap2a").iter().enumerate() {
        let zipped = opens_cleanly(&dir, seed).unwrap().unwrap_or_else(|| panic!("seed {index} is refused"));
        assert_eq!(zipped, seed.starts_with(b"PK"), "seed {index}");
    }
}

#[test]
fn a_mutated_leap2a_feed_is_read_or_refused_with_a_message() {
    fuzz(parser_runner("leap2a_feed", 800), mutated(feeds(), 6), |Input(bytes)| {
        if let Err(message) = read_feed(Cursor::new(&bytes)) {
            prop_assert!(is_precise(&message), "an unhelpful refusal: {message:?}");
        }
        Ok(())
    });
}

#[test]
fn a_mutated_leap2a_package_is_opened_or_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    fuzz(parser_runner("leap2a_package", 500), mutated(corpus("leap2a"), 6), |Input(bytes)| {
        opens_cleanly(&dir, &bytes).map(drop)
    });
}

/// Member names an attacker puts in a ZIP.
fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(vec![
            "leap2a.xml", "files/101-call-notes.pdf", "../leap2a.xml", "../../etc/passwd", "/etc/passwd",
            "files/../../outside.pdf", "C:\\Windows\\win.ini", "files\\..\\..\\x", "a:b", "files/\0.pdf",
            "./leap2a.xml", "LEAP2A.XML", "leap2a.xml/", "files/", "", "files/%2e%2e/x", "files/\u{202e}fdp.exe",
        ])
        .prop_map(str::to_string),
        1 => "[a-z./\\\\:]{1,30}",
        1 => (1usize..400).prop_map(|n| format!("{}leap2a.xml", "a/".repeat(n))),
    ]
}

/// A ZIP built member by member: each named by `member_name`, holding a (mutated) feed or
/// some bytes, stored or compressed.
fn package() -> impl Strategy<Value = (Vec<(String, Vec<u8>, bool)>, bool)> {
    let body = prop_oneof![
        2 => mutated(feeds(), 3).prop_map(|Input(b)| b),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => Just(b"%PDF-1.4\n%%EOF\n".to_vec()),
    ];
    let member = (member_name(), body, any::<bool>());
    (prop::collection::vec(member, 1..6), any::<bool>())
}

/// The ZIP, and the names of the members in it.
fn zip_of(members: &[(String, Vec<u8>, bool)], with_feed: bool) -> (Vec<u8>, Vec<String>) {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut members = members.to_vec();
    if with_feed {
        members.push(("leap2a.xml".into(), feeds()[0].clone(), true));
    }
    let mut written = Vec::new();
    for (name, bytes, deflated) in &members {
        let method = if *deflated { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        // The writer refuses some names itself (a repeated name, say): such a member is left out.
        if out.start_file(name.as_str(), options).is_ok() {
            out.write_all(bytes).expect("written to memory");
            written.push(name.clone());
        }
    }
    (out.finish().expect("a finished ZIP").into_inner(), written)
}

#[test]
fn a_zip_with_traversal_names_or_odd_members_is_opened_or_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    fuzz(parser_runner("leap2a_zip_members", 300), package(), |(members, with_feed)| {
        let (bytes, names) = zip_of(&members, with_feed);
        let unsafe_name = names.iter().any(|name| {
            name.is_empty()
                || name.starts_with('/')
                || name.contains('\\')
                || name.contains('\0')
                || name.contains(':')
                || name.split('/').any(|part| part == "..")
        });
        let opened = opens_cleanly(&dir, &bytes)?;
        prop_assert!(!(unsafe_name && opened.is_some()), "a package with a member outside it was opened: {names:?}");
        Ok(())
    });
}

#[test]
fn a_zip_member_named_to_escape_the_package_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let members = vec![("../../etc/passwd".to_string(), b"root:x:0:0".to_vec(), false)];
    let path = dir.path().join("package");
    std::fs::write(&path, zip_of(&members, true).0).unwrap();
    let refused = open_package(&path, LIMIT).expect_err("refused");
    assert!(refused.contains("../../etc/passwd") && refused.contains("outside the package"), "{refused}");
}
