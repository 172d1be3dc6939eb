# R1 Lab tasks. `just lab` opens the lab; `just test` runs every test.

export CARGO_TERM_COLOR := "never"

# Open the lab's terminal UI on the default database (.lab/lab.db, or LAB_DB / --db PATH).
# (The dev profile optimises every dependency, so the debug binaries run the numerics at full speed.)
lab *ARGS:
    cargo build -p lab --bin lab -p tui
    ./target/debug/lab-tui {{ARGS}}

# Run an experiment spec: just run experiments/world.toml --set seed=1
run SPEC *ARGS:
    cargo build -p lab --bin lab
    ./target/debug/lab run {{SPEC}} {{ARGS}}

# The lab CLI with any arguments: just cli show 3fa2
cli *ARGS:
    cargo build -p lab --bin lab
    ./target/debug/lab {{ARGS}}

# All tests: unit tests of every module and the end-to-end CLI tests.
test:
    cargo test --workspace

# Benchmarks, reported as ratios against a baseline measured in the same run.
bench:
    cargo run -p lab --example bench_world
    cargo run -p lab --example bench_model

# Formatting and lints.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
