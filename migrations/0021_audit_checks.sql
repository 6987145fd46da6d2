-- Whole-chain checks of the audit trail, as they were run: by the server on its schedule, or by
-- a person asking for one. The trail page shows the latest instead of re-reading every event on
-- every view (at a centre's scale, millions of events); it checks the events it shows itself.
CREATE TABLE audit_checks (
    id bigserial PRIMARY KEY,
    checked_at timestamptz NOT NULL DEFAULT now(),
    -- NULL: the server's scheduled check.
    checked_by uuid REFERENCES users (id) ON DELETE SET NULL,
    events bigint NOT NULL CHECK (events >= 0),
    intact boolean NOT NULL,
    first_broken_seq bigint,
    reason text,
    took_ms bigint NOT NULL CHECK (took_ms >= 0),
    CHECK (intact = (first_broken_seq IS NULL)),
    CHECK ((first_broken_seq IS NULL) = (reason IS NULL))
);
CREATE INDEX audit_checks_latest ON audit_checks (checked_at DESC, id DESC);

-- The trail's "what" filter lists the actions recorded, read by skipping through this index
-- rather than by reading every event.
CREATE INDEX audit_events_action ON audit_events (action);
