-- The review: an assessor confirms the evidence valid, authentic, current and sufficient with
-- every "met" judgement, and gives a reason when changing an earlier judgement. A centre sets
-- how many working days evidence may wait for assessment before it shows as overdue.

ALTER TABLE decisions
    ADD COLUMN confirmed_valid boolean NOT NULL DEFAULT false,
    ADD COLUMN confirmed_authentic boolean NOT NULL DEFAULT false,
    ADD COLUMN confirmed_current boolean NOT NULL DEFAULT false,
    ADD COLUMN confirmed_sufficient boolean NOT NULL DEFAULT false,
    ADD COLUMN change_reason text NOT NULL DEFAULT '';

-- A judgement is superseded once: the decisions on a criterion of an item form one chain.
CREATE UNIQUE INDEX decisions_superseded_once ON decisions (supersedes) WHERE supersedes IS NOT NULL;

ALTER TABLE centres
    ADD COLUMN assessment_due_working_days integer NOT NULL DEFAULT 10
        CHECK (assessment_due_working_days BETWEEN 1 AND 60);
