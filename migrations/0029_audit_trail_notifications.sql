-- The audit trail's page reads, besides its events, the actions recorded (its "what" filter) and
-- the latest whole-chain check. Each process now keeps both (src/db/changes.rs) and hears here
-- when they change: `audit:actions` when an action is recorded for the first time, `audit:checks`
-- when a check is recorded (BENCHMARKS.md, fix 27).

-- As in migration 0028, with the new actions: one probe of `audit_events_action` per action in
-- the statement, for an earlier event with it.
CREATE OR REPLACE FUNCTION notify_audit_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_keys('portfolio', (
        SELECT array_agg(DISTINCT c.enrolment_id::text) FROM changed_new c
        WHERE c.enrolment_id IS NOT NULL AND c.action NOT LIKE 'verifier.%'));
    PERFORM notify_keys('evidence', (
        SELECT array_agg(DISTINCT k) FROM (
            SELECT c.subject_id::text FROM changed_new c WHERE c.subject_id IS NOT NULL
            UNION ALL
            SELECT c.details->>'evidence_id' FROM changed_new c WHERE c.details ? 'evidence_id') AS named(k)));
    IF EXISTS (
        SELECT 1 FROM (SELECT c.action, min(c.seq) AS first FROM changed_new c GROUP BY c.action) AS n
        WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.action = n.action AND e.seq < n.first)) THEN
        PERFORM pg_notify('eportfolio_changes', 'audit:actions');
    END IF;
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
