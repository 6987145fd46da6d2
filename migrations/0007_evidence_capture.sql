-- Evidence capture: drafts, activity date ranges, workplace references, a fuller authenticity
-- declaration, resubmitted versions, and mappings that point into the evidence.

ALTER TABLE evidence_items
    ADD COLUMN status text NOT NULL DEFAULT 'submitted' CHECK (status IN ('draft', 'submitted')),
    ADD COLUMN submitted_at timestamptz,
    ADD COLUMN occurred_until date,
    ADD COLUMN kind text NOT NULL DEFAULT 'upload' CHECK (kind IN ('upload', 'reference')),
    ADD COLUMN held_at text NOT NULL DEFAULT '',
    ADD COLUMN held_by text NOT NULL DEFAULT '',
    ADD COLUMN confirmed_by text NOT NULL DEFAULT '',
    ADD COLUMN help_received text NOT NULL DEFAULT '',
    ADD COLUMN ai_use text NOT NULL DEFAULT '',
    ADD COLUMN third_party_confirmed_at timestamptz,
    ADD COLUMN previous_version uuid REFERENCES evidence_items (id),
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ALTER COLUMN declaration_text DROP NOT NULL,
    ALTER COLUMN declared_at DROP NOT NULL,
    ALTER COLUMN declaration_sha256 DROP NOT NULL,
    ADD CONSTRAINT evidence_range CHECK (occurred_until IS NULL OR occurred_until >= occurred_on),
    ADD CONSTRAINT evidence_submitted_is_declared CHECK (
        status = 'draft' OR (declared_at IS NOT NULL AND declaration_sha256 IS NOT NULL AND submitted_at IS NOT NULL));
UPDATE evidence_items SET submitted_at = declared_at WHERE submitted_at IS NULL;
CREATE UNIQUE INDEX evidence_one_newer_version ON evidence_items (previous_version) WHERE previous_version IS NOT NULL;

ALTER TABLE evidence_criteria
    ADD COLUMN note text NOT NULL DEFAULT '',
    ADD COLUMN file_id uuid REFERENCES evidence_files (id),
    ADD COLUMN start_seconds integer CHECK (start_seconds >= 0),
    ADD COLUMN end_seconds integer,
    ADD COLUMN page integer CHECK (page >= 1),
    ADD CONSTRAINT mapping_clip CHECK (end_seconds IS NULL OR (start_seconds IS NOT NULL AND end_seconds > start_seconds)),
    ADD CONSTRAINT mapping_points_into_a_file CHECK ((start_seconds IS NULL AND page IS NULL) OR file_id IS NOT NULL);
