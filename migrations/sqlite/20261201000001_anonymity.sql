-- Anonymity that holds (issue 6).
--
-- rounds: the promise a round opened with (mode and k) is kept on the round and the seal
-- follows it, whatever the configuration says later. After the seal, who answered is no
-- longer kept per delivery: only these counts are.
ALTER TABLE rounds ADD COLUMN anonymity TEXT;          -- anonymous | confidential | attributed; NULL (older rounds) = anonymous
ALTER TABLE rounds ADD COLUMN anonymity_k BIGINT;      -- the program's anonymity_threshold when the round opened
ALTER TABLE rounds ADD COLUMN asked_count BIGINT;      -- sealed rounds: DMs that were posted
ALTER TABLE rounds ADD COLUMN answered_count BIGINT;   -- sealed rounds: members who answered

-- Bumped by every answer that changes something; keys the DM update (never the content).
-- Reset at the seal.
ALTER TABLE deliveries ADD COLUMN answer_revision BIGINT NOT NULL DEFAULT 0;

-- Wins typed into a survey: source_key is a random token; answer_key
-- ("delivery:{id}:{question}") makes re-answers update the same win and is cleared when the
-- round closes, so nothing joins a win to a delivery afterwards.
ALTER TABLE wins ADD COLUMN round_id BIGINT;
ALTER TABLE wins ADD COLUMN answer_key TEXT;
CREATE UNIQUE INDEX wins_by_answer ON wins (answer_key);

-- Older wins from surveys named their delivery in source_key: unlink the ones whose author
-- did not agree to be named.
UPDATE wins SET source_key = 'legacy:' || id
 WHERE source_key LIKE 'delivery:%' AND consent <> 'named';

-- Rounds sealed before this migration: counts on the round, one neutral delivery state,
-- no reminder times, no answer updates left in the outbox.
UPDATE rounds SET
    answered_count = (SELECT COUNT(*) FROM deliveries d WHERE d.round_id = rounds.id AND d.state = 'answered'),
    asked_count = (SELECT COUNT(*) FROM deliveries d WHERE d.round_id = rounds.id AND d.state IN ('answered', 'expired') AND d.sent_at IS NOT NULL)
 WHERE sealed_at IS NOT NULL;
UPDATE deliveries SET state = 'closed', reminded_at = NULL, answered_at = NULL
 WHERE state IN ('answered', 'expired')
   AND round_id IN (SELECT id FROM rounds WHERE sealed_at IS NOT NULL);
DELETE FROM outbox
 WHERE (dedupe_key LIKE 'delivery:%:answer:%' OR dedupe_key LIKE 'delivery:%:remind')
   AND delivery_id IN (SELECT d.id FROM deliveries d JOIN rounds r ON r.id = d.round_id
                       WHERE r.sealed_at IS NOT NULL);
