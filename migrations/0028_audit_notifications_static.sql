-- Every audited change inserts its events while it holds the audit chain's lock (src/audit), so
-- what the insert costs, every writer waits for. The two notification triggers migrations 0025
-- and 0027 put on `audit_events` ran their key queries through `notify_changed`'s EXECUTE,
-- planned afresh for each statement: about 0.4 ms of each insert. One function with the same
-- queries written out, planned once per connection, replaces them (BENCHMARKS.md, fix 26).

-- The rule every notification follows, in one place: the keys one by one, or `kind:*` for more
-- than 100 of them.
CREATE FUNCTION notify_keys(kind text, keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF keys IS NULL THEN
        RETURN;
    END IF;
    IF cardinality(keys) > 100 THEN
        PERFORM pg_notify('eportfolio_changes', kind || ':*');
    ELSE
        PERFORM pg_notify('eportfolio_changes', kind || ':' || k) FROM unnest(keys) AS k;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
    keys_of text := TG_ARGV[1];
    sides text;
    keys text[];
BEGIN
    IF keys_of = '*' THEN
        PERFORM pg_notify('eportfolio_changes', kind || ':*');
        RETURN NULL;
    END IF;
    sides := CASE TG_OP
        WHEN 'INSERT' THEN format(keys_of, 'changed_new')
        WHEN 'DELETE' THEN format(keys_of, 'changed_old')
        ELSE format(keys_of, 'changed_old') || ' UNION ' || format(keys_of, 'changed_new')
    END;
    EXECUTE 'SELECT array_agg(DISTINCT k::text) FROM (' || sides || ') AS changed(k) WHERE k IS NOT NULL' INTO keys;
    PERFORM notify_keys(kind, keys);
    RETURN NULL;
END
$$;

-- New events: the portfolio of each enrolment with activity (a verifier's views are not activity
-- on it), and each evidence item an event is about or names (its files' events), for its history.
CREATE FUNCTION notify_audit_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_keys('portfolio', (
        SELECT array_agg(DISTINCT c.enrolment_id::text) FROM changed_new c
        WHERE c.enrolment_id IS NOT NULL AND c.action NOT LIKE 'verifier.%'));
    PERFORM notify_keys('evidence', (
        SELECT array_agg(DISTINCT k) FROM (
            SELECT c.subject_id::text FROM changed_new c WHERE c.subject_id IS NOT NULL
            UNION ALL
            SELECT c.details->>'evidence_id' FROM changed_new c WHERE c.details ? 'evidence_id') AS named(k)));
    RETURN NULL;
END
$$;

DROP TRIGGER audit_events_insert_portfolio ON audit_events;
DROP TRIGGER audit_events_insert_evidence ON audit_events;
CREATE TRIGGER audit_events_inserted AFTER INSERT ON audit_events REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION notify_audit_events();
