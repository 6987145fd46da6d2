-- What each external verifier may see today, one row per (verifier, enrolment): the enrolments
-- their current grants cover, whether a grant is for the whole centre, chosen units or chosen
-- learners. One definition for the list of a verifier's enrolments and for the check of one
-- (a portfolio view asks about one enrolment, not for every enrolment of the centre).
CREATE VIEW verifier_access AS
SELECT g.verifier_id, g.id AS grant_id, g.scope, e.id AS enrolment_id, e.centre_id
FROM verifier_grants g
JOIN enrolments e ON e.centre_id = g.centre_id
WHERE g.revoked_at IS NULL
  AND current_date BETWEEN g.starts_on AND g.ends_on
  AND (g.scope = 'centre'
       OR (g.scope = 'units'
           AND EXISTS (SELECT 1 FROM verifier_grant_units gu WHERE gu.grant_id = g.id AND gu.unit_id = e.unit_id))
       OR (g.scope = 'learners'
           AND EXISTS (SELECT 1 FROM verifier_grant_enrolments ge WHERE ge.grant_id = g.id AND ge.enrolment_id = e.id)));
