-- Sufficiency rules per unit (from its unit file) and unit sign-off: the assessor's signature
-- over exactly the record signed, the learner's countersignature over that signature, and
-- reopenings with a reason. All three are append-only: a reopened unit is signed off again as a
-- new version, and the old version keeps its signatures.

ALTER TABLE units
    ADD COLUMN min_occasions integer NOT NULL DEFAULT 1 CHECK (min_occasions >= 1),
    ADD COLUMN real_work_outcomes integer[] NOT NULL DEFAULT '{}',
    ADD COLUMN real_work_methods text[] NOT NULL DEFAULT '{}';

CREATE TABLE sign_offs (
    id uuid PRIMARY KEY,
    enrolment_id uuid NOT NULL REFERENCES enrolments (id),
    version integer NOT NULL CHECK (version >= 1),
    assessor_id uuid NOT NULL REFERENCES users (id),
    signed_at timestamptz NOT NULL,
    declaration_text text NOT NULL CHECK (declaration_text <> ''),
    -- The exact text signed (JSON: unit, every current decision, every item's declaration hash,
    -- the readiness checks) and its SHA-256, so anyone can check the signature later.
    signed_record text NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    UNIQUE (enrolment_id, version)
);

CREATE TABLE sign_off_countersignatures (
    sign_off_id uuid PRIMARY KEY REFERENCES sign_offs (id),
    learner_id uuid NOT NULL REFERENCES users (id),
    signed_at timestamptz NOT NULL,
    declaration_text text NOT NULL CHECK (declaration_text <> ''),
    signed_record text NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$')
);

CREATE TABLE sign_off_reopenings (
    sign_off_id uuid PRIMARY KEY REFERENCES sign_offs (id),
    reopened_by uuid NOT NULL REFERENCES users (id),
    reopened_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL CHECK (reason <> '')
);

CREATE TRIGGER sign_offs_append_only BEFORE UPDATE OR DELETE ON sign_offs
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER sign_off_countersignatures_append_only BEFORE UPDATE OR DELETE ON sign_off_countersignatures
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER sign_off_reopenings_append_only BEFORE UPDATE OR DELETE ON sign_off_reopenings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
