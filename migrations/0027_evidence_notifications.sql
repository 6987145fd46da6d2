-- An evidence item's page as it shows it (the item with its files, its decisions, its
-- conversation, its history, the IQA samples of it) is kept in memory by each server process, by
-- item (src/db/changes.rs). What its portfolio is made of drops it through `portfolio:<enrolment>`
-- (migration 0025); these triggers (`notify_changed`, migration 0024) send `evidence:<item id>`
-- for the rest.

-- Its conversation, only ever added to.
SELECT notify_changes_of('evidence_comments', 'evidence', 'SELECT c.evidence_id FROM %1$s c', ARRAY['INSERT']);
-- Its history: every event about the item or naming it (its files'), a verifier's views among
-- them, as `audit::trail::about` finds them. The trail is only ever added to.
SELECT notify_changes_of('audit_events', 'evidence',
    'SELECT c.subject_id::text FROM %1$s c WHERE c.subject_id IS NOT NULL
     UNION SELECT c.details->>''evidence_id'' FROM %1$s c WHERE c.details ? ''evidence_id''',
    ARRAY['INSERT']);
-- The IQA samples of it: the plan item names the item; its sample, the assessor's response and
-- the closure are reached through it.
SELECT notify_changes_of(tbl, 'evidence', keys_of, ARRAY['INSERT', 'UPDATE', 'DELETE']) FROM (VALUES
    ('iqa_plan_items', 'SELECT c.evidence_id FROM %1$s c'),
    ('iqa_samples', 'SELECT p.evidence_id FROM %1$s c JOIN iqa_plan_items p ON p.id = c.plan_item_id'),
    ('iqa_sample_responses',
     'SELECT p.evidence_id FROM %1$s c JOIN iqa_samples s ON s.id = c.sample_id JOIN iqa_plan_items p ON p.id = s.plan_item_id'),
    ('iqa_sample_closures',
     'SELECT p.evidence_id FROM %1$s c JOIN iqa_samples s ON s.id = c.sample_id JOIN iqa_plan_items p ON p.id = s.plan_item_id')
) AS sources(tbl, keys_of);
CREATE TRIGGER iqa_draws_changed_evidence AFTER UPDATE OR DELETE ON iqa_draws
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('evidence', '*');
-- People's names, units and centres drop every portfolio (`portfolio:*`), and so every item's page.
