//! Child processes that die with their owner: a tiny `sh` guard runs each
//! one and SIGKILLs it as soon as our end of the guard's stdin pipe closes.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The guard: run the command in the background, then block on stdin. EOF
/// (our end closed: fixture dropped or test binary gone) SIGKILLs the
/// command and removes whatever it left behind; the line `keep` first
/// SIGKILLs it but leaves its files, for a restart. The guard closes its own
/// copies of stdout and stderr so that, when the command dies, whoever reads
/// its output sees EOF at once. The line `term` sends SIGTERM instead, waits
/// for the command to exit on its own and leaves its exit code in
/// `$GUARD_STATUS_FILE`, keeping its files.
const GUARD_SCRIPT: &str = r#"
"$@" &
child=$!
if [ -n "$GUARD_PID_FILE" ]; then echo "$child" > "$GUARD_PID_FILE"; fi
exec >/dev/null 2>&1
read command
if [ "$command" = term ]; then
  kill -TERM "$child"
  wait "$child"
  echo $? > "$GUARD_STATUS_FILE"
  exit 0
fi
kill -KILL "$child"
wait "$child"
if [ "$command" != keep ] && [ -n "$GUARD_CLEANUP" ]; then rm -rf $GUARD_CLEANUP; fi
"#;

/// A `sh` command that runs `program args...` under the guard. The caller
/// sets its working directory, environment and stdout/stderr as for the
/// program itself (they are inherited), then hands it to [`Guarded::spawn`].
pub(super) fn guarded_command(program: &Path, args: &[OsString]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(GUARD_SCRIPT)
        .arg("sh")
        .arg(program)
        .args(args);
    // Ctrl-C in a terminal must not reach the command directly: the guard's
    // SIGKILL is the one way it stops, so teardown is always the same.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
}

/// A child process that dies with its owner.
pub(super) struct Guarded {
    pub(super) guard: Child,
    /// Closing this pipe is what tells the guard to kill the command.
    stdin: Option<ChildStdin>,
}

impl Guarded {
    pub(super) fn spawn(
        mut command: Command,
        pid_file: Option<&Path>,
        cleanup: &[&Path],
    ) -> Guarded {
        command.env(
            "GUARD_PID_FILE",
            pid_file
                .map(|p| p.as_os_str().to_owned())
                .unwrap_or_default(),
        );
        let cleanup: Vec<String> = cleanup.iter().map(|p| p.display().to_string()).collect();
        command.env("GUARD_CLEANUP", cleanup.join(" "));
        command.stdin(Stdio::piped());
        let mut guard = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        let stdin = guard.stdin.take();
        Guarded { guard, stdin }
    }

    /// Kills the command and waits until it is gone, so its ports, files and
    /// locks are free when this returns.
    pub(super) fn kill(&mut self) {
        drop(self.stdin.take());
        let _ = self.guard.wait();
    }

    /// Like [`Guarded::kill`], but the command's files stay for the next
    /// process to use.
    pub(super) fn kill_keeping_files(&mut self) {
        use std::io::Write;
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"keep\n");
        }
        let _ = self.guard.wait();
    }

    /// Sends the command SIGTERM and waits until it has exited by itself;
    /// its exit code, and how long it took to exit.
    pub(super) fn terminate(&mut self, status_file: &Path) -> (i32, Duration) {
        use std::io::Write;
        let started = Instant::now();
        if let Some(mut stdin) = self.stdin.take() {
            stdin
                .write_all(b"term\n")
                .expect("tell the guard to send SIGTERM");
        }
        let _ = self.guard.wait();
        let elapsed = started.elapsed();
        let code = fs::read_to_string(status_file)
            .unwrap_or_else(|e| panic!("exit code in {}: {e}", status_file.display()));
        let code = code.trim().parse().expect("exit code is a number");
        (code, elapsed)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `pid` is running; a zombie (dead, not yet reaped by the guard)
/// counts as gone.
pub(super) fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

pub(super) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
