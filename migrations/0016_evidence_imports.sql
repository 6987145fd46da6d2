-- Where imported evidence came from: one row per evidence item created from another
-- e-portfolio's export (LEAP2A), naming the source feed and entry, so that importing the same
-- package into the same portfolio again creates nothing twice.
CREATE TABLE evidence_imports (
    evidence_id uuid PRIMARY KEY REFERENCES evidence_items (id) ON DELETE CASCADE,
    enrolment_id uuid NOT NULL REFERENCES enrolments (id),
    format text NOT NULL CHECK (format IN ('leap2a')),
    -- The feed's atom:id (the system and portfolio it came from) and the entry's atom:id.
    source_feed text NOT NULL,
    source_entry text NOT NULL,
    imported_by uuid NOT NULL REFERENCES users (id),
    imported_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enrolment_id, source_feed, source_entry)
);
