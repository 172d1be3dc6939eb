-- The comparison table (`lab table`): every standing evaluation number with the label of the
-- model it measured. Views only; plain SQL (CASE, joins, subqueries) so it ports to PostgreSQL.

-- The label of every experiment as a model, the one place labels are defined:
--   kind 'pretrain', stage 'student-base' of a recipe -> 'student-base'
--   any other kind 'pretrain'                         -> 'base'
--   stage 'grpo' of a recipe named 'r1-zero'          -> 'r1-zero'
--   stages of a recipe named 'r1': 'coldstart-sft'    -> 'r1-coldstart'
--                                  'rl'               -> 'r1-rl'
--                                  'sft'              -> 'r1-sft'
--                                  'final-rl'         -> 'r1'
--   stages of a recipe named 'distill': 'student-sft' -> 'student-distill'
--                                       'student-rl'  -> 'student-rl'
--   anything else                                     -> the experiment's name
-- A recipe's stages are its lineage parents, the role being the stage name. An experiment that is
-- a stage of several recipes takes the smallest of the labels they give it.
CREATE VIEW model_labels AS
SELECT e.id AS experiment,
       e.kind,
       e.name,
       CASE
           WHEN e.kind = 'pretrain' AND EXISTS (
               SELECT 1 FROM lineage s
               JOIN experiments r ON r.id = s.child AND r.kind = 'recipe'
               WHERE s.parent = e.id AND s.role = 'student-base') THEN 'student-base'
           WHEN e.kind = 'pretrain' THEN 'base'
           ELSE coalesce(
               (SELECT min(CASE
                               WHEN r.name = 'r1-zero' AND s.role = 'grpo' THEN 'r1-zero'
                               WHEN r.name = 'r1' AND s.role = 'coldstart-sft' THEN 'r1-coldstart'
                               WHEN r.name = 'r1' AND s.role = 'rl' THEN 'r1-rl'
                               WHEN r.name = 'r1' AND s.role = 'sft' THEN 'r1-sft'
                               WHEN r.name = 'r1' AND s.role = 'final-rl' THEN 'r1'
                               WHEN r.name = 'distill' AND s.role = 'student-sft' THEN 'student-distill'
                               WHEN r.name = 'distill' AND s.role = 'student-rl' THEN 'student-rl'
                           END)
                FROM lineage s
                JOIN experiments r ON r.id = s.child AND r.kind = 'recipe'
                WHERE s.parent = e.id),
               e.name)
       END AS model
FROM experiments e;

-- Every number of every completed `eval` experiment, labelled with the model it evaluated (its
-- lineage role 'model'). The first eight columns are `lab table --csv`:
-- SELECT model, experiment, benchmark, prompting, metric, k, value, stderr FROM model_results
-- WHERE metric = 'pass@1' ORDER BY model, benchmark.
-- experiment/eval_name: the eval; model_experiment/model_name/model_kind: the evaluated model;
-- attempt/ended_at: the eval's standing attempt and when it ended.
CREATE VIEW model_results AS
SELECT ml.model,
       er.experiment,
       er.benchmark,
       er.prompting,
       er.metric,
       er.k,
       er.value,
       er.stderr,
       er.name AS eval_name,
       er.model AS model_experiment,
       ml.name AS model_name,
       ml.kind AS model_kind,
       r.attempt,
       a.ended_at
FROM eval_results er
JOIN model_labels ml ON ml.experiment = er.model
JOIN results r ON r.experiment = er.experiment
JOIN attempts a ON a.id = r.attempt
WHERE er.kind = 'eval';
