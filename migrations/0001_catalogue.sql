-- Qualification units as imported from unit files: unit → learning outcome → assessment criterion.
-- Identifiers are derived from the unit code and numbers (UUID v5) so re-importing changes nothing.
CREATE TABLE units (
    id uuid PRIMARY KEY,
    code text NOT NULL UNIQUE,
    reference text NOT NULL,
    title text NOT NULL,
    awarding_body text NOT NULL,
    level integer NOT NULL,
    credits integer NOT NULL,
    guided_learning_hours integer NOT NULL,
    purpose text NOT NULL,
    assessment_guidance text NOT NULL,
    source_sha256 text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE learning_outcomes (
    id uuid PRIMARY KEY,
    unit_id uuid NOT NULL REFERENCES units (id),
    number integer NOT NULL,
    title text NOT NULL,
    UNIQUE (unit_id, number)
);

CREATE TABLE criteria (
    id uuid PRIMARY KEY,
    unit_id uuid NOT NULL REFERENCES units (id),
    outcome_id uuid NOT NULL REFERENCES learning_outcomes (id),
    number text NOT NULL,
    position integer NOT NULL,
    text text NOT NULL,
    guidance text NOT NULL,
    UNIQUE (unit_id, number)
);
