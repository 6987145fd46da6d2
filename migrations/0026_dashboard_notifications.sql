-- What each person's dashboard lists (the enrolments they may see, and which of them they assess,
-- quality-assure or may verify; the IQA samples referred back to them) is kept in memory by each
-- server process, by person (src/db/changes.rs). These triggers (`notify_changed`, migration 0024)
-- send `dashboard:<person id>` when a change concerns one person's lists, and `dashboard:*` when
-- it may concern anyone's. The lines the lists show are summaries kept by enrolment, dropped by
-- `portfolio:<enrolment id>` (migration 0025).

-- Who may see which enrolment: the enrolments themselves (a new one, a new assessor or IQA) and a
-- verifier's grants. Rare, and they concern several people at once.
CREATE TRIGGER enrolments_changed_dashboards AFTER INSERT OR UPDATE OR DELETE ON enrolments
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('dashboard', '*');
CREATE TRIGGER verifier_grants_changed_dashboards AFTER INSERT OR UPDATE OR DELETE ON verifier_grants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('dashboard', '*');
CREATE TRIGGER verifier_grant_units_changed_dashboards AFTER INSERT OR UPDATE OR DELETE ON verifier_grant_units
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('dashboard', '*');
CREATE TRIGGER verifier_grant_enrolments_changed_dashboards AFTER INSERT OR UPDATE OR DELETE ON verifier_grant_enrolments
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('dashboard', '*');
-- A person's roles decide whether their grants count.
SELECT notify_changes_of('user_roles', 'dashboard', 'SELECT c.user_id FROM %1$s c', ARRAY['INSERT', 'UPDATE', 'DELETE']);

-- Samples referred back to an assessor: the plan item names the assessor; its sample, the
-- assessor's response and the closure are reached through it.
SELECT notify_changes_of(tbl, 'dashboard', keys_of, ARRAY['INSERT', 'UPDATE', 'DELETE']) FROM (VALUES
    ('iqa_plan_items', 'SELECT c.assessor_id FROM %1$s c'),
    ('iqa_samples', 'SELECT p.assessor_id FROM %1$s c JOIN iqa_plan_items p ON p.id = c.plan_item_id'),
    ('iqa_sample_responses',
     'SELECT p.assessor_id FROM %1$s c JOIN iqa_samples s ON s.id = c.sample_id JOIN iqa_plan_items p ON p.id = s.plan_item_id'),
    ('iqa_sample_closures',
     'SELECT p.assessor_id FROM %1$s c JOIN iqa_samples s ON s.id = c.sample_id JOIN iqa_plan_items p ON p.id = s.plan_item_id')
) AS sources(tbl, keys_of);
-- What a referred-back line names: the sampled item's title, the draw, people's names, the unit.
SELECT notify_changes_of('evidence_items', 'dashboard',
    'SELECT p.assessor_id FROM %1$s c JOIN iqa_plan_items p ON p.evidence_id = c.id', ARRAY['UPDATE']);
CREATE TRIGGER iqa_draws_changed_dashboards AFTER UPDATE OR DELETE ON iqa_draws
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('dashboard', '*');
CREATE TRIGGER users_changed_dashboards AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('dashboard', '*');
CREATE TRIGGER units_changed_dashboards AFTER UPDATE OR DELETE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('dashboard', '*');
