-- A learner's portfolio as its pages show it (the unit, the items with their files and criteria,
-- the current judgements, progress, the sign-off and the summary) is kept in memory by each
-- server process, by enrolment (src/db/changes.rs). These triggers (`notify_changed`, migration
-- 0024) send `portfolio:<enrolment id>` when anything it is made of changes, and `portfolio:*`
-- when something every portfolio shows changes (a person's name, a unit, a centre).

-- Tables holding the enrolment, and tables reached through an item or a sign-off.
SELECT notify_changes_of(tbl, 'portfolio', keys_of, ARRAY['INSERT', 'UPDATE', 'DELETE']) FROM (VALUES
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
    ('sign_off_countersignatures', 'SELECT s.enrolment_id FROM %1$s c JOIN sign_offs s ON s.id = c.sign_off_id')
) AS sources(tbl, keys_of);
-- The summary's "last activity". The trail is only ever added to, and a verifier's views are not
-- activity on the portfolio.
SELECT notify_changes_of('audit_events', 'portfolio',
    'SELECT c.enrolment_id FROM %1$s c WHERE c.action NOT LIKE ''verifier.%%''', ARRAY['INSERT']);

-- What every portfolio shows: people's names, the units with their outcomes and criteria, the
-- centres' rules.
CREATE TRIGGER users_changed_portfolios AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('portfolio', '*');
CREATE TRIGGER units_changed_portfolios AFTER INSERT OR UPDATE OR DELETE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('portfolio', '*');
CREATE TRIGGER learning_outcomes_changed_portfolios AFTER INSERT OR UPDATE OR DELETE ON learning_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('portfolio', '*');
CREATE TRIGGER criteria_changed_portfolios AFTER INSERT OR UPDATE OR DELETE ON criteria
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('portfolio', '*');
CREATE TRIGGER centres_changed_portfolios AFTER UPDATE OR DELETE ON centres
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('portfolio', '*');
