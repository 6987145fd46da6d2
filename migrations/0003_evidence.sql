-- Evidence items, their files and the criteria they are mapped to.
-- Stored bytes are content-addressed: one blob row per distinct SHA-256.
CREATE TABLE blobs (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint NOT NULL CHECK (size >= 0),
    content_type text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE evidence_items (
    id uuid PRIMARY KEY,
    enrolment_id uuid NOT NULL REFERENCES enrolments (id),
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    method text NOT NULL CHECK (method IN ('observation', 'witness_testimony', 'professional_discussion',
        'questioning', 'product', 'reflective_account', 'rpl', 'simulation')),
    occurred_on date NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    declaration_text text NOT NULL,
    declared_at timestamptz NOT NULL,
    declaration_sha256 text NOT NULL
);
CREATE INDEX evidence_items_enrolment ON evidence_items (enrolment_id, created_at);

CREATE TABLE evidence_files (
    id uuid PRIMARY KEY,
    evidence_id uuid NOT NULL REFERENCES evidence_items (id),
    position integer NOT NULL,
    name text NOT NULL,
    content_type text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL REFERENCES blobs (sha256),
    UNIQUE (evidence_id, position)
);

CREATE TABLE evidence_criteria (
    evidence_id uuid NOT NULL REFERENCES evidence_items (id),
    criterion_id uuid NOT NULL REFERENCES criteria (id),
    added_by uuid NOT NULL REFERENCES users (id),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (evidence_id, criterion_id)
);
CREATE INDEX evidence_criteria_criterion ON evidence_criteria (criterion_id);
