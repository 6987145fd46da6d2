//! User journeys over real HTTP against a real PostgreSQL, one module per capability.

mod common;

mod access;
mod administration;
mod api;
mod api_completeness;
mod audit_and_verification;
mod authorisation_matrix;
mod backup;
mod drafts;
mod embedded_database;
mod evidence_and_assessment;
mod evidence_capture;
mod export;
mod faults;
mod feedback_loop;
mod hostile_input;
mod idempotency;
mod interop;
mod iqa_sampling;
mod object_storage;
mod openapi;
mod pagination;
mod processes;
mod reports;
mod retention;
mod review;
mod security;
mod sign_off;
mod slow_clients;
mod subject_access;
mod tracking_grid;
mod witnesses;
