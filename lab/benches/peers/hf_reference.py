#!/usr/bin/env python3
"""Reference logits of a Hugging Face model directory from transformers, for the lab's opt-in
real-model check (`just test-real-model`): writes DIR/lab-reference.safetensors with the token
ids of fixed prompts and transformers' f32 logits on them, and DIR/lab-reference.json with the
greedy continuations.

    .peer-venv/bin/python lab/benches/peers/hf_reference.py DIR
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

directory = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(directory)
model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
prompts = [
    tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 17 + 25? Think step by step."}],
        add_generation_prompt=True, tokenize=False) + "<think>\n",
    "The capital of France is",
    "一加一等于二。 So 1 + 1 =",
]
tensors, outputs = {}, []
with torch.no_grad():
    for i, text in enumerate(prompts):
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        tensors[f"input_ids.{i}"] = ids[0].contiguous()
        tensors[f"logits.{i}"] = model(ids).logits[0].float().contiguous()
        greedy = model.generate(ids, max_new_tokens=32, do_sample=False)[0, ids.shape[1]:]
        outputs.append({"text": text, "greedy_new_ids": greedy.tolist(),
                        "greedy_new_text": tokenizer.decode(greedy)})
save_file(tensors, os.path.join(directory, "lab-reference.safetensors"))
json.dump({"outputs": outputs}, open(os.path.join(directory, "lab-reference.json"), "w"),
          indent=1, ensure_ascii=False)
print("wrote the reference of", len(prompts), "prompts")
