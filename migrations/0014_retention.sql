-- Retention: each centre's schedule per record type, legal holds on learners, the purge runs
-- that applied them, evidence files removed under retention (their SHA-256 kept), anonymised
-- accounts, and audit events whose personal details can be redacted without breaking the chain.

-- A row overrides the built-in default for its record type (see `retention::RecordType`).
CREATE TABLE retention_schedules (
    centre_id uuid NOT NULL REFERENCES centres (id),
    record_type text NOT NULL CHECK (record_type IN ('evidence_files', 'call_recordings', 'assessment_records',
        'iqa_records', 'audit_events', 'accounts')),
    period_count integer NOT NULL CHECK (period_count BETWEEN 1 AND 5200),
    period_unit text NOT NULL CHECK (period_unit IN ('weeks', 'months', 'years')),
    counted_from text NOT NULL CHECK (counted_from IN ('certification', 'leaving')),
    set_by uuid REFERENCES users (id),
    set_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre_id, record_type)
);

-- A learner under a current hold (lifted_at NULL) is never purged.
CREATE TABLE legal_holds (
    id uuid PRIMARY KEY,
    learner_id uuid NOT NULL REFERENCES users (id),
    centre_id uuid NOT NULL REFERENCES centres (id),
    reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    placed_by uuid REFERENCES users (id),
    placed_at timestamptz NOT NULL DEFAULT now(),
    lifted_by uuid REFERENCES users (id),
    lifted_at timestamptz,
    lift_reason text,
    CONSTRAINT lifted_with_reason CHECK ((lifted_at IS NULL) = (lift_reason IS NULL))
);
CREATE UNIQUE INDEX legal_holds_one_current ON legal_holds (learner_id, centre_id) WHERE lifted_at IS NULL;

-- Each `eportfolio purge --apply` that changed something.
CREATE TABLE purge_runs (
    id uuid PRIMARY KEY,
    ran_at timestamptz NOT NULL DEFAULT now(),
    as_of date NOT NULL,
    summary jsonb NOT NULL
);

-- An evidence file removed under retention: the evidence item stays, and this row keeps what
-- the file was (its SHA-256 above all, which declarations, sign-offs and exports refer to).
CREATE TABLE retention_removed_files (
    file_id uuid PRIMARY KEY,
    evidence_id uuid NOT NULL REFERENCES evidence_items (id),
    position integer NOT NULL,
    name text NOT NULL,
    content_type text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    record_type text NOT NULL CHECK (record_type IN ('evidence_files', 'call_recordings')),
    -- Mappings that pointed into the file (criterion, clip or page), as they were.
    mappings jsonb NOT NULL DEFAULT '[]',
    removed_at timestamptz NOT NULL,
    purge_run_id uuid NOT NULL REFERENCES purge_runs (id)
);
CREATE INDEX retention_removed_files_evidence ON retention_removed_files (evidence_id);

ALTER TABLE users ADD COLUMN anonymised_at timestamptz;

-- Events from now on hash the SHA-256 of their details rather than the details themselves, so
-- the details can later be redacted (personal data removed under retention) while the chain
-- still verifies: the hash covers `details_sha256`, which a redaction keeps. Events recorded
-- before this migration (details_sha256 NULL) hash as they always did and cannot be redacted.
ALTER TABLE audit_events
    ADD COLUMN details_sha256 text CHECK (details_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN redacted_at timestamptz;

-- Still append-only, with one exception: replacing the details of an event that has a details
-- digest, once, marking it redacted, with every other column (the digest and hashes above all)
-- unchanged.
CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.details_sha256 IS NOT NULL AND OLD.redacted_at IS NULL
        AND NEW.redacted_at IS NOT NULL AND NEW.details ? 'redacted'
        AND ROW(NEW.seq, NEW.occurred_at, NEW.actor_id, NEW.actor_role, NEW.action, NEW.subject_type,
                NEW.subject_id, NEW.enrolment_id, NEW.prev_hash, NEW.hash, NEW.centre_id, NEW.details_sha256)
            IS NOT DISTINCT FROM
            ROW(OLD.seq, OLD.occurred_at, OLD.actor_id, OLD.actor_role, OLD.action, OLD.subject_type,
                OLD.subject_id, OLD.enrolment_id, OLD.prev_hash, OLD.hash, OLD.centre_id, OLD.details_sha256) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE OR REPLACE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard();
