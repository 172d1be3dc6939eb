#!/usr/bin/env python3
"""TRL's GRPOTrainer on CPU on a Hugging Face model directory: the peer of `bench_hf`.

Both sides train the same model on the same prompt texts (written by `bench_hf`, already rendered
through the model's chat template) at the same settings: P prompts x G completions per step from
one generate() call, every completion forced to --max-completion-length tokens (min_new_tokens),
temperature 1, top-p 1, dapo loss, beta 0 (no reference model), one optimisation step per batch,
fp32, no gradient checkpointing.

Last line: TRL_GRPO median_step_s=X prompt_tokens=N completion_tokens=M (step 0, the warm-up, is
dropped).
"""
import argparse
import json
import os
import statistics
import time

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--prompts", required=True, help="a JSON list of prompt texts")
p.add_argument("--prompts-per-step", type=int, default=2)
p.add_argument("--num-generations", "-G", type=int, default=4)
p.add_argument("--max-completion-length", type=int, default=32)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
args = p.parse_args()

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="",
                  TOKENIZERS_PARALLELISM="false", WANDB_DISABLED="true")

import torch  # noqa: E402

torch.set_num_threads(args.threads)

import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

transformers.logging.set_verbosity_error()

P, G = args.prompts_per_step, args.num_generations
texts = json.load(open(args.prompts))
rows = [{"prompt": texts[i % len(texts)]} for i in range(P * max(args.steps, 1) * 4)]
tokenizer = AutoTokenizer.from_pretrained(args.model)
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)


def answer_reward(completions, **kwargs):
    return [1.0 if "<answer>" in c else 0.0 for c in completions]


class StepTimer(TrainerCallback):
    def __init__(self):
        self.started, self.seconds = None, []

    def on_step_begin(self, *a, **k):
        self.started = time.perf_counter()

    def on_step_end(self, *a, **k):
        self.seconds.append(time.perf_counter() - self.started)


config = GRPOConfig(
    output_dir="/tmp/trl_grpo_hf", use_cpu=True, bf16=False, fp16=False, report_to="none",
    use_vllm=False, per_device_train_batch_size=P * G, gradient_accumulation_steps=1,
    num_generations=G, max_completion_length=args.max_completion_length, temperature=1.0,
    top_p=1.0, top_k=0, beta=0.0, num_iterations=1, loss_type="dapo", learning_rate=1e-6,
    max_steps=args.steps, gradient_checkpointing=False, logging_steps=1, save_strategy="no",
    disable_tqdm=True, dataloader_num_workers=0, seed=0, shuffle_dataset=False,
    generation_kwargs={"min_new_tokens": args.max_completion_length},
)
timer = StepTimer()
trainer = GRPOTrainer(model=model, reward_funcs=[answer_reward], args=config,
                      train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      callbacks=[timer])
trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
trainer.train()
steps = timer.seconds[1:]
prompt_tokens = max(len(tokenizer(t)["input_ids"]) for t in texts)
print(f"torch {torch.__version__} transformers {transformers.__version__} threads={torch.get_num_threads()} "
      f"steps={['%.2f' % s for s in timer.seconds]}")
print(f"TRL_GRPO median_step_s={statistics.median(steps):.3f} prompt_tokens={prompt_tokens} "
      f"completion_tokens={args.max_completion_length}")
