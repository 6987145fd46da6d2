-- The audit trail's page reads, besides its events, the actions recorded (its "what" filter) and
-- the latest whole-chain check. Each process now keeps both (src/db/changes.rs) and hears here
-- when they change: `audit:actions` when an action is recorded for the first time, `audit:checks`
-- when a check is recorded (BENCHMARKS.md, fix 28).

-- Whether an action is new is one probe of an index on (action, seq) for an earlier event with
-- it. With the index on the action alone, the planner read the trail from its start up to the
-- first event of the action (170 ms an insert at a million events); the new index serves the
-- "what" filter's list of actions (src/audit/trail.rs) as the old one did.
CREATE INDEX audit_events_action_seq ON audit_events (action, seq);
DROP INDEX audit_events_action;

-- As in migration 0028, with the new actions.
CREATE OR REPLACE FUNCTION notify_audit_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    recorded text;
    first bigint;
BEGIN
    PERFORM notify_keys('portfolio', (
        SELECT array_agg(DISTINCT c.enrolment_id::text) FROM changed_new c
        WHERE c.enrolment_id IS NOT NULL AND c.action NOT LIKE 'verifier.%'));
    PERFORM notify_keys('evidence', (
        SELECT array_agg(DISTINCT k) FROM (
            SELECT c.subject_id::text FROM changed_new c WHERE c.subject_id IS NOT NULL
            UNION ALL
            SELECT c.details->>'evidence_id' FROM changed_new c WHERE c.details ? 'evidence_id') AS named(k)));
    FOR recorded, first IN SELECT c.action, min(c.seq) FROM changed_new c GROUP BY c.action LOOP
        IF NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.action = recorded AND e.seq < first) THEN
            PERFORM pg_notify('eportfolio_changes', 'audit:actions');
            EXIT;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION notify_audit_checks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eportfolio_changes', 'audit:checks');
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_checks_changed AFTER INSERT OR UPDATE OR DELETE ON audit_checks
    FOR EACH STATEMENT EXECUTE FUNCTION notify_audit_checks();
