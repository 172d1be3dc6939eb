//! Running the side-by-side peers (PyTorch, TRL) of the benchmarks and reading what they print.

/// What a TRL peer script printed: all of it, and its last `TRL_GRPO ...` summary line.
pub struct TrlOutput {
    pub stdout: String,
    pub line: String,
}

impl TrlOutput {
    /// Runs a peer script (`command`, started from `python`) and keeps its output, or says why
    /// it gave none.
    pub fn run(
        command: &mut std::process::Command,
        python: &std::path::Path,
    ) -> Result<TrlOutput, String> {
        let out = command
            .output()
            .map_err(|e| format!("could not start {}: {e}", python.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "TRL bench failed: {}",
                stderr.lines().last().unwrap_or("")
            ));
        }
        let line = stdout
            .lines()
            .rfind(|l| l.starts_with("TRL_GRPO"))
            .ok_or("no TRL_GRPO line in TRL's output")?
            .to_string();
        Ok(TrlOutput { stdout, line })
    }

    /// The number printed as `name=VALUE` anywhere in the output.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        self.stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in TRL's output"))
    }
}
