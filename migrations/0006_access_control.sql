-- Access control: verifiers' time-boxed access to centres, who assessed whom over time,
-- one-time password-set links, failed sign-ins for throttling, and learners' record numbers.

CREATE TABLE verifier_grants (
    id uuid PRIMARY KEY,
    verifier_id uuid NOT NULL REFERENCES users (id),
    centre_id uuid NOT NULL REFERENCES centres (id),
    starts_on date NOT NULL,
    ends_on date NOT NULL CHECK (ends_on >= starts_on),
    granted_by uuid REFERENCES users (id),
    granted_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX verifier_grants_verifier ON verifier_grants (verifier_id, centre_id);

-- Each row is the assessor (and IQA) an enrolment had from `assigned_at`; the newest is current
-- and mirrors enrolments.assessor_id / iqa_id.
CREATE TABLE enrolment_assignments (
    id uuid PRIMARY KEY,
    enrolment_id uuid NOT NULL REFERENCES enrolments (id),
    assessor_id uuid NOT NULL REFERENCES users (id),
    iqa_id uuid REFERENCES users (id),
    assigned_at timestamptz NOT NULL DEFAULT now(),
    assigned_by uuid REFERENCES users (id),
    reason text NOT NULL
);
CREATE INDEX enrolment_assignments_enrolment ON enrolment_assignments (enrolment_id, assigned_at);
INSERT INTO enrolment_assignments (id, enrolment_id, assessor_id, iqa_id, assigned_at, reason)
    SELECT gen_random_uuid(), id, assessor_id, iqa_id, enrolled_at, 'Enrolled' FROM enrolments;

CREATE TABLE password_links (
    token_sha256 text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    created_by uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX password_links_user ON password_links (user_id);

CREATE TABLE sign_in_failures (
    id bigserial PRIMARY KEY,
    account text NOT NULL,
    client text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_account ON sign_in_failures (account, failed_at);
CREATE INDEX sign_in_failures_client ON sign_in_failures (client, failed_at);

-- The learner's number in the college's student-records system (or ULN), for imports.
ALTER TABLE users ADD COLUMN external_ref text;
CREATE UNIQUE INDEX users_external_ref ON users (external_ref) WHERE external_ref IS NOT NULL;
ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
