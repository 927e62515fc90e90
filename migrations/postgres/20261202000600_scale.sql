-- Answers at Slack scale (issue 9).

-- Each answer supersedes the pending update of its DM by target_key, and followers look up
-- the post they refer to by message_key: both were full scans of the outbox.
CREATE INDEX outbox_by_target ON outbox (target_key);
CREATE INDEX outbox_by_message ON outbox (message_key);

-- Rate budgets shared by every replica: one row per budget (a method tier of the workspace,
-- its post ceiling, one channel). Generic cell rate algorithm: tat_ms is the theoretical
-- arrival time of the next call (Unix ms) and ready_ms is tat_ms minus the burst tolerance:
-- a call may go when ready_ms <= now, and moves both on by one interval, in one conditional
-- statement. Outbox claims skip rows whose budget is not ready.
CREATE TABLE rate_budgets (
    budget_key TEXT PRIMARY KEY,
    tat_ms BIGINT NOT NULL,
    ready_ms BIGINT NOT NULL
);
