-- What the caseload, the dashboard and the enrolment lists show of each portfolio (criteria met,
-- items waiting and the oldest of them), kept up to date by the database in the same transaction
-- as the change, instead of recomputed from every decision of every item of a caseload on each
-- view (seconds for an assessor with fifty full portfolios).

-- The current judgement of each criterion of each item: the newest decision (decisions are
-- append-only; a changed judgement is a new decision superseding the old).
CREATE TABLE current_judgements (
    evidence_id uuid NOT NULL,
    criterion_id uuid NOT NULL,
    enrolment_id uuid NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('met', 'not_yet')),
    decision_seq bigint NOT NULL,
    PRIMARY KEY (evidence_id, criterion_id)
);
CREATE INDEX current_judgements_met ON current_judgements (enrolment_id, criterion_id) WHERE outcome = 'met';

-- Items awaiting assessment: submitted, not replaced by a newer version, with a mapped
-- criterion that has no judgement yet.
CREATE TABLE awaiting_assessment (
    evidence_id uuid PRIMARY KEY,
    enrolment_id uuid NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX awaiting_assessment_enrolment ON awaiting_assessment (enrolment_id, created_at);

CREATE FUNCTION refresh_awaiting(item uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF item IS NULL THEN
        RETURN;
    END IF;
    -- One refresh of an item at a time, each reading what the one before committed. (Not a
    -- conflict with the key-share locks that inserting its decisions and mappings take.)
    PERFORM 1 FROM evidence_items WHERE id = item FOR NO KEY UPDATE;
    IF EXISTS (
        SELECT 1 FROM evidence_items e
        WHERE e.id = item AND e.status = 'submitted'
          AND NOT EXISTS (SELECT 1 FROM evidence_items n WHERE n.previous_version = e.id)
          AND EXISTS (SELECT 1 FROM evidence_criteria m WHERE m.evidence_id = e.id
                      AND NOT EXISTS (SELECT 1 FROM decisions d
                                      WHERE d.evidence_id = m.evidence_id AND d.criterion_id = m.criterion_id))
    ) THEN
        INSERT INTO awaiting_assessment (evidence_id, enrolment_id, created_at)
        SELECT e.id, e.enrolment_id, e.created_at FROM evidence_items e WHERE e.id = item
        ON CONFLICT (evidence_id) DO UPDATE SET created_at = EXCLUDED.created_at
            WHERE awaiting_assessment.created_at <> EXCLUDED.created_at;
    ELSE
        DELETE FROM awaiting_assessment WHERE evidence_id = item;
    END IF;
END $$;

CREATE FUNCTION decision_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO current_judgements (evidence_id, criterion_id, enrolment_id, outcome, decision_seq)
    SELECT NEW.evidence_id, NEW.criterion_id, e.enrolment_id, NEW.outcome, NEW.seq
    FROM evidence_items e WHERE e.id = NEW.evidence_id
    ON CONFLICT (evidence_id, criterion_id) DO UPDATE
        SET outcome = EXCLUDED.outcome, decision_seq = EXCLUDED.decision_seq
        WHERE current_judgements.decision_seq < EXCLUDED.decision_seq;
    PERFORM refresh_awaiting(NEW.evidence_id);
    RETURN NULL;
END $$;
CREATE TRIGGER decisions_progress AFTER INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION decision_progress();

CREATE FUNCTION mapping_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM refresh_awaiting(OLD.evidence_id);
    ELSE
        PERFORM refresh_awaiting(NEW.evidence_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER evidence_criteria_progress AFTER INSERT OR DELETE ON evidence_criteria
    FOR EACH ROW EXECUTE FUNCTION mapping_progress();

CREATE FUNCTION item_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM awaiting_assessment WHERE evidence_id = OLD.id;
        RETURN NULL;
    END IF;
    PERFORM refresh_awaiting(NEW.id);
    IF TG_OP = 'INSERT' THEN
        PERFORM refresh_awaiting(NEW.previous_version);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER evidence_items_progress AFTER INSERT OR DELETE OR UPDATE OF status, previous_version, created_at ON evidence_items
    FOR EACH ROW EXECUTE FUNCTION item_progress();

-- Recomputes both tables from scratch: for this migration, and after a bulk load that ran
-- with the triggers off (`eportfolio demo --scale`).
CREATE FUNCTION rebuild_assessment_progress() RETURNS void LANGUAGE sql AS $$
    DELETE FROM current_judgements;
    INSERT INTO current_judgements (evidence_id, criterion_id, enrolment_id, outcome, decision_seq)
    SELECT DISTINCT ON (d.evidence_id, d.criterion_id) d.evidence_id, d.criterion_id, e.enrolment_id, d.outcome, d.seq
    FROM decisions d JOIN evidence_items e ON e.id = d.evidence_id
    ORDER BY d.evidence_id, d.criterion_id, d.seq DESC;
    DELETE FROM awaiting_assessment;
    INSERT INTO awaiting_assessment (evidence_id, enrolment_id, created_at)
    SELECT e.id, e.enrolment_id, e.created_at FROM evidence_items e
    WHERE e.status = 'submitted'
      AND NOT EXISTS (SELECT 1 FROM evidence_items n WHERE n.previous_version = e.id)
      AND EXISTS (SELECT 1 FROM evidence_criteria m WHERE m.evidence_id = e.id
                  AND NOT EXISTS (SELECT 1 FROM current_judgements j
                                  WHERE j.evidence_id = m.evidence_id AND j.criterion_id = m.criterion_id));
$$;
SELECT rebuild_assessment_progress();
