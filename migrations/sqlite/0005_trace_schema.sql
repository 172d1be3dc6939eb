-- Traces have one schema (lab/src/trace.rs). Evaluations used to record a sample's
-- correctness as `correct` and its format as booleans; the schema records both as rewards
-- in [0, 1], as GRPO does: `accuracy` and `format`.
UPDATE traces
SET reward_parts = json_object(
    'accuracy', CAST(json_extract(reward_parts, '$.correct') AS REAL),
    'format', CAST(json_extract(reward_parts, '$.format') AS REAL))
WHERE json_type(reward_parts, '$.correct') IS NOT NULL;
