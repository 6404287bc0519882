//! The one native GPU shared by the tests of a test binary. A missing adapter fails every test with
//! instructions; nothing is skipped.

use std::sync::OnceLock;

use bertlab::gpu::Gpu;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::new_blocking().map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// The `bertlab` binary, run from the crate root, with a scratch directory of its own (removed when
/// the test is done with it).
pub struct Cli {
    pub tmp: std::path::PathBuf,
}

impl Cli {
    pub fn new(name: &str) -> Cli {
        let tmp = std::env::temp_dir().join(format!("bertlab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        Cli { tmp }
    }

    pub fn exe(&self) -> &'static str {
        env!("CARGO_BIN_EXE_bertlab")
    }

    /// (success, stdout, stderr) of `bertlab ARGS`.
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let o = std::process::Command::new(self.exe()).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run bertlab");
        (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
    }

    /// A path in the scratch directory.
    pub fn dir(&self, name: &str) -> String {
        self.tmp.join(name).to_string_lossy().to_string()
    }

    /// Each command fails with a message containing its text, and none panics.
    pub fn refuses(&self, cases: &[(Vec<&str>, &str)]) {
        for (args, want) in cases {
            let (ok, _, err) = self.run(args);
            assert!(!ok && err.contains(want), "{args:?}: exit ok={ok}, stderr {err:?} should contain {want:?}");
            assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}
