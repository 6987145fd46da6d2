//! The learner CSV an administrator imports from the college's student records, read by
//! `accounts::import::read_rows` before anything is checked against the database. Whatever the
//! bytes, reading answers rows or reasons; a well-formed file with hostile values (unicode,
//! control characters, quotes, formula prefixes, 10,000-character fields, line breaks inside
//! quotes, blank lines) reads back exactly, each row on the line a spreadsheet shows it.

use eportfolio::accounts::import::{self, MAX_ROWS, Row};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

use crate::support::{Input, corpus, fuzz, is_precise, mutated, parser_runner};

/// Line breaks in `bytes` as a text editor counts them: LF, CRLF or a lone CR each end a line.
fn line_breaks(bytes: &[u8]) -> usize {
    (0..bytes.len()).filter(|&i| bytes[i] == b'\n' || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))).count()
}

/// The properties any input must keep.
fn reads_cleanly(bytes: &[u8]) -> Result<Vec<Row>, TestCaseError> {
    let rows = match import::read_rows(bytes) {
        Err(problems) => {
            prop_assert!(!problems.is_empty(), "refused without a reason");
            for problem in &problems {
                prop_assert!(is_precise(problem), "an unhelpful reason: {problem:?}");
            }
            return Ok(Vec::new());
        }
        Ok(rows) => rows,
    };
    prop_assert!(!rows.is_empty() && rows.len() <= MAX_ROWS, "{} rows", rows.len());
    let last_line = 1 + line_breaks(bytes);
    let mut previous = 1;
    for row in &rows {
        prop_assert!(
            row.line > previous && row.line <= last_line,
            "line {} after {previous}, of {last_line}",
            row.line
        );
        previous = row.line;
        for field in [&row.email, &row.name, &row.unit, &row.assessor] {
            prop_assert_eq!(field.trim(), field.as_str(), "fields are trimmed");
        }
        prop_assert!(row.iqa.as_deref() != Some("") && row.learner_ref.as_deref() != Some(""));
        for problem in &row.problems {
            prop_assert!(is_precise(problem), "an unhelpful problem: {problem:?}");
        }
    }
    Ok(rows)
}

#[test]
fn every_seed_in_the_corpus_reads_without_a_problem() {
    for (index, seed) in corpus("learner_csv").iter().enumerate() {
        let rows = reads_cleanly(seed).unwrap_or_else(|e| panic!("seed {index}: {e}"));
        assert!(rows.len() >= 2, "seed {index} has learners");
        assert!(rows.iter().all(|r| r.problems.is_empty()), "seed {index}: {rows:?}");
    }
}

#[test]
fn a_mutated_learner_csv_is_read_or_refused_with_reasons() {
    fuzz(parser_runner("learner_csv", 1000), mutated(corpus("learner_csv"), 6), |Input(bytes)| {
        reads_cleanly(&bytes).map(drop)
    });
}

/// Text as student-records exports carry it, and as attackers write it.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9.@ '-]{0,24}",
        2 => any::<String>().prop_map(|s| s.chars().take(30).collect()),
        1 => "[\\PC\\t\\r\\n\\x00-\\x1f\"',;]{0,16}",
        1 => select(vec!["=cmd|' /C calc'!A0", "+SUM(A1)", "-2+3", "@A1", "=HYPERLINK(\"http://x\")", "\t=1"])
            .prop_map(str::to_string),
        1 => select(vec!["O'Brien, Jo", "\"quoted\"", "a\"b", "line\nbreak", "cr\rhere", "crlf\r\nhere", "\u{feff}bom"])
            .prop_map(str::to_string),
        1 => select(vec!["Zoë Ångström", "李小龍", "\u{202e}evil\u{202c}", "\u{3000}wide space\u{3000}", "😀"])
            .prop_map(str::to_string),
        1 => (1usize..10_001).prop_map(|n| "é".repeat(n / 2)),
    ]
}

/// One column: the header a spreadsheet might give it, in one of its spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Email,
    Name,
    Unit,
    Assessor,
    Iqa,
    LearnerRef,
    Other,
}

fn header(column: Column, spelling: &Index) -> String {
    let names: &[&str] = match column {
        Column::Email => &["Email", "Email Address", "learner_email", "STUDENT EMAIL", "e-mail"],
        Column::Name => &["Name", "Full name", "learner_name", "Student Name"],
        Column::Unit => &["Unit", "Unit Code", "unit_code"],
        Column::Assessor => &["Assessor", "Assessor Email", "assessor_email"],
        Column::Iqa => &["IQA", "IQA email", "iqa_email"],
        Column::LearnerRef => &["Learner ref", "Student ID", "ULN"],
        Column::Other => &["Notes", "Cohort", "Start date", ""],
    };
    spelling.get(names).to_string()
}

/// A file: its columns in some order, a delimiter, a BOM or not, line endings, and rows of
/// values with blank lines between some of them.
#[derive(Debug, Clone)]
struct Sheet {
    columns: Vec<(Column, Index)>,
    delimiter: u8,
    bom: bool,
    crlf: bool,
    rows: Vec<(Vec<String>, u8)>,
}

fn sheet() -> impl Strategy<Value = Sheet> {
    let required = Just(vec![Column::Email, Column::Name, Column::Unit, Column::Assessor]);
    let optional = prop::sample::subsequence(vec![Column::Iqa, Column::LearnerRef, Column::Other], 0..=3);
    (required, optional)
        .prop_flat_map(|(mut columns, optional)| {
            columns.extend(optional);
            let width = columns.len();
            (
                Just(columns).prop_shuffle(),
                prop::collection::vec(any::<Index>(), width),
                select(vec![b',', b';', b'\t']),
                any::<bool>(),
                any::<bool>(),
                prop::collection::vec((prop::collection::vec(value(), width), 0u8..3), 1..30),
            )
        })
        .prop_map(|(columns, spellings, delimiter, bom, crlf, rows)| Sheet {
            columns: columns.into_iter().zip(spellings).collect(),
            delimiter,
            bom,
            crlf,
            rows,
        })
}

impl Sheet {
    fn record(&self, fields: &[String]) -> Vec<u8> {
        // Written with CRLF so that a lone CR inside a value is quoted too (readers end a record
        // at any of CR, LF and CRLF); then the line ending asked for.
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        writer.write_record(fields).expect("a record");
        let mut record = writer.into_inner().expect("written");
        if !self.crlf {
            record.truncate(record.len() - 2);
            record.push(b'\n');
        }
        record
    }

    /// The file, and the rows read_rows should find in it (blank rows are skipped).
    fn write(&self) -> (Vec<u8>, Vec<Row>) {
        let mut bytes = if self.bom { b"\xef\xbb\xbf".to_vec() } else { Vec::new() };
        let headers: Vec<String> = self.columns.iter().map(|(c, s)| header(*c, s)).collect();
        bytes.extend(self.record(&headers));
        let at = |column: Column| self.columns.iter().position(|(c, _)| *c == column);
        let mut expected = Vec::new();
        for (fields, blank_lines) in &self.rows {
            for _ in 0..*blank_lines {
                bytes.extend_from_slice(if self.crlf { b"\r\n" } else { b"\n" });
            }
            let line = 1 + line_breaks(&bytes);
            bytes.extend(self.record(fields));
            if fields.iter().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            let field = |column: Column| at(column).map(|i| fields[i].trim().to_string());
            let optional = |column: Column| field(column).filter(|f| !f.is_empty());
            expected.push(Row {
                line,
                email: field(Column::Email).unwrap(),
                name: field(Column::Name).unwrap(),
                unit: field(Column::Unit).unwrap(),
                assessor: field(Column::Assessor).unwrap(),
                iqa: optional(Column::Iqa),
                learner_ref: optional(Column::LearnerRef),
                problems: Vec::new(),
            });
        }
        (bytes, expected)
    }
}

#[test]
fn a_well_formed_csv_with_hostile_values_reads_back_exactly_on_the_right_lines() {
    fuzz(parser_runner("learner_csv_structure", 250), sheet(), |sheet| {
        let (bytes, expected) = sheet.write();
        if expected.is_empty() {
            let refused = import::read_rows(&bytes).expect_err("a file of blank rows has no learners");
            prop_assert_eq!(refused, vec!["The file has no learners.".to_string()]);
            return Ok(());
        }
        let rows = reads_cleanly(&bytes)?;
        prop_assert_eq!(rows, expected, "\n{}", String::from_utf8_lossy(&bytes));
        Ok(())
    });
}

/// Found by the fuzzer: with CR line endings (Excel for Mac's "Macintosh" CSV) every row was
/// reported on line 1, so an administrator could not find the row to fix.
#[test]
fn a_csv_with_mac_line_endings_reports_each_row_on_its_own_line() {
    let seed =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/corpus/learner_csv/mac-cr-line-endings.csv"))
            .unwrap();
    let lines: Vec<usize> = import::read_rows(&seed).unwrap().iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![2, 3]);
}
