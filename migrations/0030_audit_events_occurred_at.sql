-- The audit trail's "from" and "to" dates. Nothing indexed when an event happened, so a range of
-- days was found by reading the trail back from its newest event until enough of the range had
-- passed: 0.44 s for one day eight months back at 1,000 learners, and ten times that at full
-- scale. Events are appended in time order, so each insert adds at the index's right-hand end
-- (BENCHMARKS.md, fix 33).
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
