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

# All tests: unit tests of every module and the end-to-end CLI tests.
test:
    cargo test --workspace

# Built by the very command `just test` builds with (cargo test builds the examples too), so the
# two share one feature set and neither rebuilds burn after the other. The PyTorch and TRL peers
# run when `just bench-peers` has made their venv.
#
# Benchmarks, each figure a ratio against a baseline measured in the same run.
bench:
    cargo test --workspace --no-run
    ./target/debug/examples/bench_world
    ./target/debug/examples/bench_model

# About 7 GB with torch's CUDA libraries; neither the build nor `just test` needs it.
#
# The side-by-side peers of `just bench`: PyTorch 2.9 and TRL 1.16 on CPU, in .peer-venv.
bench-peers:
    python3 -m venv .peer-venv
    .peer-venv/bin/pip install torch==2.9.0 transformers trl==1.16.0 datasets

# Each hostile-input fuzz target runs `seconds` (LAB_FUZZ_SECONDS; two targets at a time), each
# crash campaign takes `kills` kill -9.
#
# The long campaigns: ten minutes of fuzzing per target, 25 kills per crash campaign.
soak seconds="600" kills="25":
    LAB_FUZZ_SECONDS={{seconds}} cargo test -p lab --test hostile_input -- --nocapture --test-threads 2
    LAB_CRASH_KILLS={{kills}} cargo test -p lab --test cli -- crash_campaign

# Formatting and lints.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
