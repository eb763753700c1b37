//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `creditguard` binary built for these tests.
pub fn creditguard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_creditguard"));
    cmd.env_remove("RUST_LOG")
        .env("CREDITGUARD_NO_PROGRESS", "true");
    cmd
}

/// Runs a command and returns its output, printing it when the test fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn creditguard");
    eprintln!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The repository root (where `pipelines/` and `sample-data/` are).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory with a pipeline file pointing at `input` and a lake inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn lake(&self) -> PathBuf {
        self.path("lake")
    }
}

/// Every file under a directory, recursively, sorted (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Number of committed Parquet files under a directory, recursively.
pub fn parquet_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                parquet_files(&p)
            } else {
                usize::from(
                    p.extension().is_some_and(|x| x == "parquet")
                        && !e.file_name().to_string_lossy().starts_with('.'),
                )
            }
        })
        .sum()
}
