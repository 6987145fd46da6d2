-- Assessors' judgements per criterion per evidence item. Append-only: a changed judgement is a
-- new row; the latest row (by seq) for an item and criterion is the current one.
CREATE TABLE decisions (
    id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    evidence_id uuid NOT NULL REFERENCES evidence_items (id),
    criterion_id uuid NOT NULL REFERENCES criteria (id),
    outcome text NOT NULL CHECK (outcome IN ('met', 'not_yet')),
    feedback text NOT NULL,
    assessor_id uuid NOT NULL REFERENCES users (id),
    decided_at timestamptz NOT NULL DEFAULT now(),
    supersedes uuid REFERENCES decisions (id)
);
CREATE INDEX decisions_evidence ON decisions (evidence_id, criterion_id, seq DESC);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
