//! The statement-count journey, in a test binary of its own: it counts what sqlx reports through
//! a tracing subscriber, which must not see (or miss) other journeys running at the same time.

#![allow(dead_code)] // the shared harness has helpers this binary does not use

#[path = "journeys/common.rs"]
mod common;
#[path = "journeys/query_counts.rs"]
mod query_counts;
