//! User journeys over real HTTP against a real PostgreSQL, one module per capability.

mod common;

mod access;
mod administration;
mod api;
mod api_completeness;
mod audit_and_verification;
mod authorisation_matrix;
mod embedded_database;
mod evidence_and_assessment;
mod evidence_capture;
mod export;
mod feedback_loop;
mod idempotency;
mod interop;
mod iqa_sampling;
mod object_storage;
mod reports;
mod review;
mod security;
mod sign_off;
mod tracking_grid;
mod witnesses;
