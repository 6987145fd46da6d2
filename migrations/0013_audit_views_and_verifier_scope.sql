-- The audit trail by centre, verifiers' access narrowed to units or chosen learners, and the
-- one thing a verifier writes: their own report notes from a centre visit.

-- The centre an event belongs to (from its enrolment, or the centre the actor acted for).
-- Events recorded before this column stay NULL; queries fall back to their enrolment's centre.
-- A non-NULL centre is covered by the event's hash.
ALTER TABLE audit_events ADD COLUMN centre_id uuid REFERENCES centres (id);
CREATE INDEX audit_events_centre ON audit_events (centre_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);

-- What a grant covers: the whole centre, chosen units, or chosen learners' enrolments.
ALTER TABLE verifier_grants ADD COLUMN scope text NOT NULL DEFAULT 'centre'
    CHECK (scope IN ('centre', 'units', 'learners'));
CREATE TABLE verifier_grant_units (
    grant_id uuid NOT NULL REFERENCES verifier_grants (id),
    unit_id uuid NOT NULL REFERENCES units (id),
    PRIMARY KEY (grant_id, unit_id)
);
CREATE TABLE verifier_grant_enrolments (
    grant_id uuid NOT NULL REFERENCES verifier_grants (id),
    enrolment_id uuid NOT NULL REFERENCES enrolments (id),
    PRIMARY KEY (grant_id, enrolment_id)
);

CREATE TABLE verifier_notes (
    id uuid PRIMARY KEY,
    verifier_id uuid NOT NULL REFERENCES users (id),
    centre_id uuid NOT NULL REFERENCES centres (id),
    visit_on date NOT NULL,
    body text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX verifier_notes_verifier ON verifier_notes (verifier_id, centre_id, visit_on);

-- An evidence item's history includes its files' events, which name the item in their details.
CREATE INDEX audit_events_evidence ON audit_events ((details->>'evidence_id'), seq) WHERE details ? 'evidence_id';
