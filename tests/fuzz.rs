//! Bounded fuzzing of everything that reads what people upload: the unit-file and CASE readers,
//! the learner CSV reader, the LEAP2A reader, and (over HTTP, fewer cases) the evidence upload,
//! LEAP2A import, unit import and learner import routes. Seeds are the committed corpus under
//! `tests/fuzz/corpus/`; see `tests/fuzz/README.md` for longer runs and adding seeds.

#![allow(dead_code)] // the shared harness has helpers this binary does not use

#[path = "journeys/common.rs"]
mod common;
#[path = "fuzz/support.rs"]
mod support;

#[path = "fuzz/leap2a.rs"]
mod leap2a;
#[path = "fuzz/learner_csv.rs"]
mod learner_csv;
#[path = "fuzz/over_http.rs"]
mod over_http;
#[path = "fuzz/unit_files.rs"]
mod unit_files;
