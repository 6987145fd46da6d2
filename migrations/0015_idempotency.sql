-- Idempotency keys on evidence creation (the IETF "Idempotency-Key" header): a client that
-- retries an upload with the same key gets the first answer back instead of a second item.
-- A key belongs to the person who sent it. The row is written in the same transaction as the
-- evidence it answers for, so a crash leaves neither; a request still in flight holds a
-- transaction-scoped advisory lock on the key instead of a row.
CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL REFERENCES users (id),
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 over the method, the path and the parsed request (fields, and each file's name
    -- and SHA-256): a retry with a fresh multipart boundary still matches.
    fingerprint text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    status smallint NOT NULL,
    -- The answer's bytes exactly as first sent (JSON), so a replay is byte-for-byte the same.
    body text NOT NULL,
    location text,
    evidence_id uuid NOT NULL REFERENCES evidence_items (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
