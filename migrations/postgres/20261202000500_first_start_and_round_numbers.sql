-- Issue 11, items 1 and 4.
--
-- service_facts: instants the service records once, such as when it first ran against this
-- database ('first_start'). A first start opens no round for a firing that came before it.
-- A database that already ran keeps its history: its first start is when its first program
-- was applied (at the first start), so firings missed while it was down are still caught up.
CREATE TABLE service_facts (
    name TEXT PRIMARY KEY,
    at   BIGINT NOT NULL
);
INSERT INTO service_facts (name, at)
SELECT 'first_start', t.first FROM (SELECT MIN(created_at) AS first FROM programs) t
WHERE t.first IS NOT NULL;

-- Rounds are numbered per survey (1, 2, 3 … for each program and survey), the number people
-- read; rounds.id stays the API's identifier. Existing rounds are numbered in id order.
ALTER TABLE rounds ADD COLUMN number BIGINT;
UPDATE rounds SET number = (
    SELECT COUNT(*) FROM rounds r2
    WHERE r2.program_id = rounds.program_id AND r2.survey_id = rounds.survey_id AND r2.id <= rounds.id
);
CREATE UNIQUE INDEX rounds_survey_number ON rounds (program_id, survey_id, number);

-- Item 7: a member Slack does not know (users.info answers user_not_found) is not messaged,
-- and the reason is kept so the operator sees it (GET …/member-problems, the log,
-- check-config --online); it is cleared when Slack knows them again.
ALTER TABLE members ADD COLUMN slack_problem TEXT;
UPDATE members SET slack_problem = 'user_not_found' WHERE slack_deleted = TRUE AND slack_tz IS NULL;
