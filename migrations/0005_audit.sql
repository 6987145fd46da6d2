-- The audit trail: every state change and every verifier view, append-only, each event
-- carrying the hash of the one before it so that any edit breaks the chain.
CREATE TABLE audit_events (
    seq bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    actor_id uuid REFERENCES users (id),
    actor_role text NOT NULL,
    action text NOT NULL,
    subject_type text NOT NULL,
    subject_id uuid,
    enrolment_id uuid REFERENCES enrolments (id),
    details jsonb NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX audit_events_enrolment ON audit_events (enrolment_id, seq);
CREATE INDEX audit_events_subject ON audit_events (subject_id, seq);

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
