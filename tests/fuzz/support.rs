//! What every fuzz target shares: the committed corpus, the mutations applied to its seeds, how
//! many cases a run tries (bounded for CI, raised with `FUZZ_CASES`), and where failures persist.

use std::fmt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

/// Input bytes, shown in a failure report as text (escaped) so a failing case can be read and
/// saved as a corpus seed.
#[derive(Clone, PartialEq, Eq)]
pub struct Input(pub Vec<u8>);

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8 * 1024;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        write!(f, "Input({} bytes: b\"{}\"", self.0.len(), shown.escape_ascii())?;
        if self.0.len() > SHOWN { write!(f, " …)") } else { write!(f, ")") }
    }
}

/// The seeds of one target: every file in `tests/fuzz/corpus/<target>/` (dot files aside), in
/// name order so a persisted failure replays against the same seeds.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    corpus_named(target).into_iter().map(|(_, bytes)| bytes).collect()
}

/// The seeds with their file names: a `refused-…` seed is one the reader must refuse.
pub fn corpus_named(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "the corpus {} has no seeds", dir.display());
    paths
        .iter()
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            (name, std::fs::read(path).expect("a readable seed"))
        })
        .collect()
}

/// `FUZZ_CASES=N` raises every parser target to N cases and every HTTP target to N/8.
fn requested() -> Option<u32> {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.trim().parse().ok())
}

/// A runner for a pure parser: `default` cases (or more with `FUZZ_CASES`), failures persisted
/// to `tests/fuzz/proptest-regressions/<target>.txt` and replayed first.
pub fn parser_runner(target: &'static str, default: u32) -> TestRunner {
    runner(target, requested().map_or(default, |n| n.max(default)))
}

/// A runner for a target that sends each case over HTTP: far fewer cases, each is a request.
pub fn http_runner(target: &'static str, default: u32) -> TestRunner {
    runner(target, requested().map_or(default, |n| (n / 8).max(default)))
}

fn runner(target: &'static str, cases: u32) -> TestRunner {
    let file: &'static str = Box::leak(
        format!("{}/tests/fuzz/proptest-regressions/{target}.txt", env!("CARGO_MANIFEST_DIR")).into_boxed_str(),
    );
    TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        // Shrinking an HTTP case is a request per step: keep a failing run short.
        max_shrink_iters: 512,
        ..Config::default()
    })
}

/// Runs `test` over `strategy`, panicking with proptest's report (the shrunk input) on failure.
pub fn fuzz<S: Strategy>(mut runner: TestRunner, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: fmt::Debug,
{
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{error}");
    }
}

/// An error message a person can act on: some words, not a panic or a debug dump.
pub fn is_precise(message: &str) -> bool {
    let message = message.trim();
    !message.is_empty() && !message.contains("panicked") && !message.contains("RUST_BACKTRACE")
}

/// Bytes that break parsers: quoting and escapes, control characters, byte-order marks and
/// invalid UTF-8, bidirectional overrides, spreadsheet formula prefixes, huge and odd numbers,
/// structure from each format (TOML tables, JSON brackets, XML markup and entities, multipart
/// boundaries, ZIP signatures), and path traversal.
pub const HOSTILE: &[&[u8]] = &[
    b"\0",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\r\n",
    b"\r",
    b"\n\n",
    b"\"",
    b"'",
    b"\\",
    b"\\u0000",
    b"\\uD800",
    b"\t",
    b",",
    b";",
    b"\x1b[31m",
    "\u{202e}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{3000}".as_bytes(),
    "\u{fffd}".as_bytes(),
    "Zoë Ångström 😀".as_bytes(),
    b"=cmd|' /C calc'!A0",
    b"+SUM(A1:A9)",
    b"-2+3",
    b"@HYPERLINK(\"http://x\")",
    b"99999999999999999999999999999999",
    b"-9223372036854775809",
    b"1e999",
    b"-0",
    b"NaN",
    b"0x7fffffff",
    b"4294967297",
    b"1.4.",
    b"0.0",
    b"65536.1",
    b"{",
    b"}",
    b"[",
    b"]",
    b"[[outcomes]]\nnumber = 1\n",
    b"[[outcomes.criteria]]\n",
    b"[sufficiency]\n",
    b"code = \"",
    b"\"\"\"",
    b"{\"a\":",
    b"null",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"\"CFItems\":",
    b"<",
    b">",
    b"</entry>",
    b"<entry>",
    b"<![CDATA[",
    b"]]>",
    b"<!DOCTYPE feed [<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>",
    b"&b;",
    b"&#0;",
    b"&#xFFFFFFFF;",
    b"&unknown;",
    b"xmlns=\"\"",
    b"<link rel=\"enclosure\" href=\"../../etc/passwd\"/>",
    b"<rdf:type rdf:resource=\"leap2:resource\"/>",
    b"--fuzz-boundary-7MA4YWxk\r\n",
    b"--fuzz-boundary-7MA4YWxk--\r\n",
    b"Content-Disposition: form-data; name=\"file\"; filename=\"../../evil.pdf\"\r\n\r\n",
    b"Content-Disposition: form-data; name=\"metadata\"\r\n\r\n{}",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"%PDF-1.4\n",
    b"../",
    b"..\\",
    b"/etc/passwd",
    b"C:\\Windows\\",
    b"%00",
];

/// One change to a seed. Positions are `Index`es, so they fit whatever length the input has by
/// then and shrink towards the start.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Delete(Index, u16),
    Insert(Index, Vec<u8>),
    InsertHostile(Index, Index),
    /// A run of one byte: a very long field or line.
    Repeat(Index, u8, u16),
    /// A section repeated right after itself.
    Duplicate(Index, u16, u8),
    /// This input's start, then another seed's rest.
    Splice(Index, Index, Index),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<Index>;
    prop_oneof![
        3 => (at(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        2 => (at(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => at().prop_map(Mutation::Truncate),
        2 => (at(), 1u16..512).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (at(), prop::collection::vec(any::<u8>(), 1..24)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        4 => (at(), at()).prop_map(|(i, h)| Mutation::InsertHostile(i, h)),
        1 => (at(), any::<u8>(), 1u16..12_000).prop_map(|(i, b, n)| Mutation::Repeat(i, b, n)),
        2 => (at(), 1u16..2048, 1u8..4).prop_map(|(i, n, times)| Mutation::Duplicate(i, n, times)),
        1 => (at(), at(), at()).prop_map(|(s, a, b)| Mutation::Splice(s, a, b)),
    ]
}

/// The longest input a mutation may make (duplication compounds).
const MAX_LEN: usize = 2 * 1024 * 1024;

pub fn apply(seeds: &[Vec<u8>], seed: &Index, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.get(seeds).clone();
    for mutation in mutations {
        let at = |i: &Index, bytes: &Vec<u8>| i.index(bytes.len() + 1);
        match mutation {
            Mutation::FlipBit(i, bit) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
            Mutation::SetByte(i, b) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Mutation::FlipBit(..) | Mutation::SetByte(..) => {}
            Mutation::Truncate(i) => {
                let at = at(i, &bytes);
                bytes.truncate(at);
            }
            Mutation::Delete(i, n) => {
                let start = at(i, &bytes);
                let end = (start + *n as usize).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::Insert(i, inserted) => {
                let at = at(i, &bytes);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::InsertHostile(i, h) => {
                let at = at(i, &bytes);
                bytes.splice(at..at, h.get(HOSTILE).iter().copied());
            }
            Mutation::Repeat(i, b, n) => {
                let at = at(i, &bytes);
                bytes.splice(at..at, std::iter::repeat_n(*b, *n as usize));
            }
            Mutation::Duplicate(i, n, times) => {
                let start = at(i, &bytes);
                let end = (start + *n as usize).min(bytes.len());
                let section = bytes[start..end].to_vec();
                for _ in 0..*times {
                    bytes.splice(end..end, section.iter().copied());
                }
            }
            Mutation::Splice(other, a, b) => {
                let other = other.get(seeds);
                let keep = at(a, &bytes);
                bytes.truncate(keep);
                bytes.extend_from_slice(&other[b.index(other.len() + 1)..]);
            }
        }
        bytes.truncate(MAX_LEN);
    }
    bytes
}

/// Seeds as they are, and with up to `most` mutations.
pub fn mutated(seeds: Vec<Vec<u8>>, most: usize) -> impl Strategy<Value = Input> {
    (any::<Index>(), prop::collection::vec(mutation(), 0..=most))
        .prop_map(move |(seed, mutations)| Input(apply(&seeds, &seed, &mutations)))
}

/// A failure with a message, for results that are not `TestCaseError`s.
pub fn fail(message: impl fmt::Display) -> TestCaseError {
    TestCaseError::fail(message.to_string())
}
