-- A learner's portfolio as its pages show it (the unit, the items with their files and criteria,
-- the current judgements, progress, the sign-off and the summary) is kept in memory by each
-- server process, by enrolment (src/db/changes.rs). These triggers send `portfolio:<enrolment
-- id>` when anything it is made of changes, and `portfolio:*` when something every portfolio
-- shows changes (a person's name, a unit, a centre).

-- TG_ARGV[0] is the kind; TG_ARGV[1] a query naming the keys of the changed rows, with `%1$s`
-- where the transition table goes (`changed_new`, `changed_old`, or both), or '*'.
CREATE FUNCTION notify_changed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF keys IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(keys) > 100 THEN
        PERFORM pg_notify('eportfolio_changes', kind || ':*');
    ELSE
        PERFORM pg_notify('eportfolio_changes', kind || ':' || k) FROM unnest(keys) AS k;
    END IF;
    RETURN NULL;
END
$$;

-- Tables holding the enrolment, and tables reached through an item or a sign-off: three
-- statement triggers each (a transition table belongs to one event).
DO $$
DECLARE
    source record;
    event text;
BEGIN
    FOR source IN SELECT * FROM (VALUES
        ('enrolments', 'SELECT c.id FROM %1$s c'),
        ('evidence_items', 'SELECT c.enrolment_id FROM %1$s c'),
        ('current_judgements', 'SELECT c.enrolment_id FROM %1$s c'),
        ('awaiting_assessment', 'SELECT c.enrolment_id FROM %1$s c'),
        ('sign_offs', 'SELECT c.enrolment_id FROM %1$s c'),
        ('witness_requests', 'SELECT c.enrolment_id FROM %1$s c'),
        ('evidence_files', 'SELECT i.enrolment_id FROM %1$s c JOIN evidence_items i ON i.id = c.evidence_id'),
        ('evidence_criteria', 'SELECT i.enrolment_id FROM %1$s c JOIN evidence_items i ON i.id = c.evidence_id'),
        ('decisions', 'SELECT i.enrolment_id FROM %1$s c JOIN evidence_items i ON i.id = c.evidence_id'),
        ('witnesses', 'SELECT i.enrolment_id FROM %1$s c JOIN evidence_items i ON i.witness_id = c.id'),
        ('sign_off_reopenings', 'SELECT s.enrolment_id FROM %1$s c JOIN sign_offs s ON s.id = c.sign_off_id'),
        ('sign_off_countersignatures', 'SELECT s.enrolment_id FROM %1$s c JOIN sign_offs s ON s.id = c.sign_off_id'),
        -- The summary's "last activity"; a verifier's views are not activity on the portfolio.
        ('audit_events', 'SELECT c.enrolment_id FROM %1$s c WHERE c.action NOT LIKE ''verifier.%%''')
    ) AS s(tbl, keys_of) LOOP
        FOREACH event IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
            -- The audit trail is only ever added to.
            CONTINUE WHEN source.tbl = 'audit_events' AND event <> 'INSERT';
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s FOR EACH STATEMENT
                 EXECUTE FUNCTION notify_changed_rows(''portfolio'', %L)',
                source.tbl || '_' || lower(event) || '_portfolio', event, source.tbl,
                CASE event
                    WHEN 'INSERT' THEN 'NEW TABLE AS changed_new'
                    WHEN 'DELETE' THEN 'OLD TABLE AS changed_old'
                    ELSE 'OLD TABLE AS changed_old NEW TABLE AS changed_new'
                END,
                source.keys_of);
        END LOOP;
    END LOOP;
END
$$;

-- What every portfolio shows: people's names, the units with their outcomes and criteria, the
-- centres' rules.
CREATE TRIGGER users_changed_portfolios AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed_rows('portfolio', '*');
CREATE TRIGGER units_changed_portfolios AFTER INSERT OR UPDATE OR DELETE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed_rows('portfolio', '*');
CREATE TRIGGER learning_outcomes_changed_portfolios AFTER INSERT OR UPDATE OR DELETE ON learning_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed_rows('portfolio', '*');
CREATE TRIGGER criteria_changed_portfolios AFTER INSERT OR UPDATE OR DELETE ON criteria
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed_rows('portfolio', '*');
CREATE TRIGGER centres_changed_portfolios AFTER UPDATE OR DELETE ON centres
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed_rows('portfolio', '*');
