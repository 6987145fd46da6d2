-- Witness testimony and assessors' own records. A learner's witness register; requests sent to
-- a witness as an expiring single-use link (only the token's SHA-256 is kept); the statement the
-- witness writes and signs becomes an evidence item that the assessor confirms. Observation and
-- professional-discussion records are evidence items written and signed by the assessor.

CREATE TABLE witnesses (
    id uuid PRIMARY KEY,
    learner_id uuid NOT NULL REFERENCES users (id),
    name text NOT NULL CHECK (name <> ''),
    job_role text NOT NULL CHECK (job_role <> ''),
    relationship text NOT NULL CHECK (relationship <> ''),
    email text NOT NULL DEFAULT '',
    phone text NOT NULL DEFAULT '',
    is_expert boolean NOT NULL DEFAULT false,
    competence text NOT NULL DEFAULT '',
    added_by uuid NOT NULL REFERENCES users (id),
    added_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT witness_contact CHECK (email <> '' OR phone <> ''),
    CONSTRAINT expert_witness_competence CHECK (NOT is_expert OR competence <> '')
);
CREATE INDEX witnesses_learner ON witnesses (learner_id, name);

CREATE TABLE witness_requests (
    id uuid PRIMARY KEY,
    enrolment_id uuid NOT NULL REFERENCES enrolments (id),
    witness_id uuid NOT NULL REFERENCES witnesses (id),
    message text NOT NULL DEFAULT '',
    token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    requested_by uuid NOT NULL REFERENCES users (id),
    requested_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    evidence_id uuid REFERENCES evidence_items (id),
    CONSTRAINT used_request_has_statement CHECK ((used_at IS NULL) = (evidence_id IS NULL))
);
CREATE INDEX witness_requests_enrolment ON witness_requests (enrolment_id, requested_at);

CREATE TABLE witness_request_criteria (
    request_id uuid NOT NULL REFERENCES witness_requests (id),
    criterion_id uuid NOT NULL REFERENCES criteria (id),
    PRIMARY KEY (request_id, criterion_id)
);

-- Who signed an item: the learner (their declaration), the witness (their statement) or the
-- assessor (their observation or discussion record). A witness has no account: the witness row
-- and the name they typed are the signer.
ALTER TABLE evidence_items
    DROP CONSTRAINT evidence_items_kind_check,
    ADD CONSTRAINT evidence_items_kind_check
        CHECK (kind IN ('upload', 'reference', 'witness_statement', 'assessor_record')),
    ADD COLUMN signer_role text NOT NULL DEFAULT 'learner' CHECK (signer_role IN ('learner', 'witness', 'assessor')),
    ADD COLUMN witness_id uuid REFERENCES witnesses (id),
    ADD COLUMN signed_name text NOT NULL DEFAULT '',
    ADD COLUMN assessment_location text NOT NULL DEFAULT '',
    ADD COLUMN witness_confirmed_by uuid REFERENCES users (id),
    ADD COLUMN witness_confirmed_at timestamptz,
    ADD CONSTRAINT witness_statement_signed_by_witness CHECK (
        (kind = 'witness_statement') = (witness_id IS NOT NULL)
        AND (kind <> 'witness_statement' OR (signer_role = 'witness' AND signed_name <> '')))
    ,
    ADD CONSTRAINT witness_confirmation_complete CHECK (
        (witness_confirmed_by IS NULL) = (witness_confirmed_at IS NULL)
        AND (witness_confirmed_at IS NULL OR kind = 'witness_statement'));
