-- People, the centres they work in, their roles there, and learners' enrolments on units.
CREATE TABLE centres (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    password_hash text NOT NULL,
    disabled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE user_roles (
    user_id uuid NOT NULL REFERENCES users (id),
    centre_id uuid NOT NULL REFERENCES centres (id),
    role text NOT NULL CHECK (role IN ('learner', 'assessor', 'iqa', 'eqa', 'admin')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, centre_id, role)
);

-- Personal API tokens: only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    token_sha256 text NOT NULL UNIQUE,
    label text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

-- Server-side sessions (tower-sessions records), shared by every server process.
CREATE TABLE sessions (
    id text PRIMARY KEY,
    data jsonb NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE enrolments (
    id uuid PRIMARY KEY,
    centre_id uuid NOT NULL REFERENCES centres (id),
    learner_id uuid NOT NULL REFERENCES users (id),
    unit_id uuid NOT NULL REFERENCES units (id),
    assessor_id uuid NOT NULL REFERENCES users (id),
    iqa_id uuid REFERENCES users (id),
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (learner_id, unit_id)
);
CREATE INDEX enrolments_assessor ON enrolments (assessor_id);
CREATE INDEX enrolments_iqa ON enrolments (iqa_id);
