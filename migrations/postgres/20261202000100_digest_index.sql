-- The digest (docs/digest.md) sums answers per round, metric and role. This index covers that
-- aggregate (round_id, metric_key, role, value_number), so it is read in order from the index
-- alone instead of visiting a million rows of the table.
CREATE INDEX responses_digest ON responses (round_id, metric_key, role, value_number);
