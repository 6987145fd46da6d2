-- Internal quality assurance: the sampling strategy (risk band per assessor, sampling rate per
-- band), reproducible sample draws, the sampling plan, signed sample records with the assessor's
-- response and the IQA's closure, and standardisation meetings. Every table is append-only: a
-- changed band or rate is a new row (the newest wins), a response or closure is a row of its own.

CREATE TABLE iqa_assessor_bands (
    id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    centre_id uuid NOT NULL REFERENCES centres (id),
    assessor_id uuid NOT NULL REFERENCES users (id),
    band text NOT NULL CHECK (band IN ('new', 'developing', 'experienced')),
    set_by uuid NOT NULL REFERENCES users (id),
    set_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX iqa_assessor_bands_latest ON iqa_assessor_bands (centre_id, assessor_id, seq DESC);

CREATE TABLE iqa_band_rates (
    id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    centre_id uuid NOT NULL REFERENCES centres (id),
    band text NOT NULL CHECK (band IN ('new', 'developing', 'experienced')),
    rate_percent integer NOT NULL CHECK (rate_percent BETWEEN 1 AND 100),
    set_by uuid NOT NULL REFERENCES users (id),
    set_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX iqa_band_rates_latest ON iqa_band_rates (centre_id, band, seq DESC);

-- A draw keeps its seed, the parameters (bands and rates) and the population it drew from, so
-- anyone can re-derive the same sample.
CREATE TABLE iqa_draws (
    id uuid PRIMARY KEY,
    iqa_id uuid NOT NULL REFERENCES users (id),
    centre_id uuid NOT NULL REFERENCES centres (id),
    seed text NOT NULL CHECK (seed <> ''),
    parameters jsonb NOT NULL,
    population uuid[] NOT NULL,
    drawn uuid[] NOT NULL,
    drawn_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE iqa_plan_items (
    id uuid PRIMARY KEY,
    iqa_id uuid NOT NULL REFERENCES users (id),
    centre_id uuid NOT NULL REFERENCES centres (id),
    enrolment_id uuid NOT NULL REFERENCES enrolments (id),
    evidence_id uuid NOT NULL REFERENCES evidence_items (id),
    assessor_id uuid NOT NULL REFERENCES users (id),
    unit_id uuid NOT NULL REFERENCES units (id),
    method text NOT NULL,
    stage text NOT NULL CHECK (stage IN ('interim', 'summative')),
    planned_on date NOT NULL,
    draw_id uuid REFERENCES iqa_draws (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (iqa_id <> assessor_id)
);
CREATE INDEX iqa_plan_items_iqa ON iqa_plan_items (iqa_id, planned_on);
CREATE INDEX iqa_plan_items_assessor ON iqa_plan_items (assessor_id);

-- The IQA's signed record of one sampled item: SHA-256 over exactly the text signed.
CREATE TABLE iqa_samples (
    id uuid PRIMARY KEY,
    plan_item_id uuid NOT NULL UNIQUE REFERENCES iqa_plan_items (id),
    iqa_id uuid NOT NULL REFERENCES users (id),
    outcome text NOT NULL CHECK (outcome IN ('agree', 'refer_back')),
    feedback text NOT NULL CHECK (feedback <> ''),
    actions text NOT NULL,
    signed_record text NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    recorded_at timestamptz NOT NULL,
    CHECK (outcome <> 'refer_back' OR actions <> '')
);

CREATE TABLE iqa_sample_responses (
    sample_id uuid PRIMARY KEY REFERENCES iqa_samples (id),
    assessor_id uuid NOT NULL REFERENCES users (id),
    response text NOT NULL CHECK (response <> ''),
    responded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE iqa_sample_closures (
    sample_id uuid PRIMARY KEY REFERENCES iqa_samples (id),
    iqa_id uuid NOT NULL REFERENCES users (id),
    note text NOT NULL CHECK (note <> ''),
    closed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE standardisation_meetings (
    id uuid PRIMARY KEY,
    centre_id uuid NOT NULL REFERENCES centres (id),
    held_on date NOT NULL,
    title text NOT NULL CHECK (title <> ''),
    agreed_actions text NOT NULL CHECK (agreed_actions <> ''),
    recorded_by uuid NOT NULL REFERENCES users (id),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE standardisation_attendees (
    meeting_id uuid NOT NULL REFERENCES standardisation_meetings (id),
    user_id uuid NOT NULL REFERENCES users (id),
    PRIMARY KEY (meeting_id, user_id)
);

CREATE TABLE standardisation_items (
    meeting_id uuid NOT NULL REFERENCES standardisation_meetings (id),
    evidence_id uuid NOT NULL REFERENCES evidence_items (id),
    PRIMARY KEY (meeting_id, evidence_id)
);

CREATE TRIGGER iqa_assessor_bands_append_only BEFORE UPDATE OR DELETE ON iqa_assessor_bands
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER iqa_band_rates_append_only BEFORE UPDATE OR DELETE ON iqa_band_rates
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER iqa_draws_append_only BEFORE UPDATE OR DELETE ON iqa_draws
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER iqa_plan_items_append_only BEFORE UPDATE OR DELETE ON iqa_plan_items
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER iqa_samples_append_only BEFORE UPDATE OR DELETE ON iqa_samples
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER iqa_sample_responses_append_only BEFORE UPDATE OR DELETE ON iqa_sample_responses
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER iqa_sample_closures_append_only BEFORE UPDATE OR DELETE ON iqa_sample_closures
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER standardisation_meetings_append_only BEFORE UPDATE OR DELETE ON standardisation_meetings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER standardisation_attendees_append_only BEFORE UPDATE OR DELETE ON standardisation_attendees
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER standardisation_items_append_only BEFORE UPDATE OR DELETE ON standardisation_items
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
