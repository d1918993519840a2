//! End-to-end tests of `strongroom run`: real OS processes, the commands
//! run being `sh -c` scripts that write what they saw into the test's
//! temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "run/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::{
    Env, FILE_VALUE, NEW_VALUE, STRONGROOM_VARS, VALUE, fails, no_value_in, ok, pid_namespace,
    send, stdout, tmpfs_dir, wait_exit, wait_until,
};

#[test]
fn env_and_file_values_reach_the_command_and_the_directory_goes() {
    let env = Env::new();
    env.put("prod/app/db-password", VALUE.as_bytes());
    env.put("prod/app/tls-key", FILE_VALUE.as_bytes());
    let o = env.run(
        &[
            "--env",
            "DB_PASSWORD=prod/app/db-password",
            "--file",
            "prod/app/tls-key=tls.key",
        ],
        r#"printf %s "$DB_PASSWORD" > "$1/env"
           cat "$STRONGROOM_SECRETS_DIR/tls.key" > "$1/file"
           stat -c %a "$STRONGROOM_SECRETS_DIR/tls.key" > "$1/file-mode"
           stat -c %a "$STRONGROOM_SECRETS_DIR" > "$1/dir-mode"
           printf %s "$STRONGROOM_SECRETS_DIR" > "$1/dir""#,
    );
    ok(&o);
    no_value_in(&stdout(&o));
    assert_eq!(env.read_out("env").unwrap(), VALUE);
    assert_eq!(env.read_out("file").unwrap(), FILE_VALUE);
    assert_eq!(env.read_out("file-mode").unwrap().trim(), "600");
    assert_eq!(env.read_out("dir-mode").unwrap().trim(), "700");
    let dir = PathBuf::from(env.read_out("dir").unwrap());
    assert!(dir.is_absolute(), "{}", dir.display());
    assert!(!dir.exists(), "{} was not removed", dir.display());

    // no value was written anywhere else in the test's directory (no .env
    // file; the store holds it sealed)
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            no_value_in(&String::from_utf8_lossy(&bytes));
        }
    }

    // each value was read through the audited handle, and the chain holds
    let log = std::fs::read_to_string(env.path("store.db.audit.jsonl")).unwrap();
    no_value_in(&log);
    for path in ["prod/app/db-password", "prod/app/tls-key"] {
        assert!(
            log.lines().any(|l| l.contains("\"read\"")
                && l.contains(path)
                && l.contains("operator:tester")),
            "no read record of {path}"
        );
    }
    env.verify_audit();
}

#[test]
fn the_commands_exit_code_passes_through() {
    let env = Env::new();
    env.put("prod/app/db-password", VALUE.as_bytes());
    let opts = ["--env", "DB_PASSWORD=prod/app/db-password"];
    fails(&env.run(&opts, "exit 7"), 7);
    fails(&env.run(&opts, "exit 0"), 0);
    // killed by a signal: 128 + its number
    fails(&env.run(&opts, "kill -KILL $$"), 137);
    // the directory goes on this path too
    let o = env.run(
        &["--file", "prod/app/db-password=pw"],
        r#"printf %s "$STRONGROOM_SECRETS_DIR" > "$1/dir"; kill -KILL $$"#,
    );
    fails(&o, 137);
    assert!(!Path::new(&env.read_out("dir").unwrap()).exists());
}

#[test]
fn signals_sent_to_run_reach_the_command() {
    let env = Env::new();
    env.put("prod/app/db-password", VALUE.as_bytes());
    let mut run = env.spawn_run(
        &["--env", "DB_PASSWORD=prod/app/db-password"],
        r#"trap 'echo term > "$1/term"; exit 42' TERM
           trap 'echo hup > "$1/hup"' HUP
           trap 'echo usr1 > "$1/usr1"' USR1
           trap 'echo usr2 > "$1/usr2"' USR2
           trap 'echo int > "$1/int"' INT
           echo ready > "$1/ready"
           while :; do sleep 0.1; done"#,
    );
    wait_until("the command to start", || env.read_out("ready").is_some());
    // with --env, HUP is not the rotation signal: it is passed on all the same
    send(run.id(), "HUP");
    wait_until("SIGHUP to reach the command", || {
        env.read_out("hup").is_some()
    });
    for sig in ["USR1", "USR2", "INT"] {
        send(run.id(), sig);
        let marker = sig.to_ascii_lowercase();
        wait_until(&format!("SIG{sig} to reach the command"), || {
            env.read_out(&marker).is_some()
        });
    }
    send(run.id(), "TERM");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(42), "{}", env.run_output());
    assert_eq!(env.read_out("term").unwrap(), "term\n");
    no_value_in(&env.run_output());
}

#[test]
fn values_stay_out_of_runs_own_output_and_environment() {
    let env = Env::new();
    env.put("prod/app/db-password", VALUE.as_bytes());
    env.put("prod/app/tls-key", FILE_VALUE.as_bytes());
    let mut run = env.spawn_run(
        &[
            "--env",
            "DB_PASSWORD=prod/app/db-password",
            "--file",
            "prod/app/tls-key=tls.key",
        ],
        r#"echo $$ > "$1/pid.tmp"; mv "$1/pid.tmp" "$1/pid"
           while :; do sleep 0.1; done"#,
    );
    wait_until("the command to start", || env.read_out("pid").is_some());
    let child_pid = env.read_out("pid").unwrap().trim().to_owned();
    // the command has the value in its environment (so this check can fail) ...
    let child_env = std::fs::read(format!("/proc/{child_pid}/environ")).unwrap();
    let wanted = format!("DB_PASSWORD={VALUE}");
    assert!(
        child_env
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_bytes()),
        "the command did not get DB_PASSWORD"
    );
    // ... and run's own environment has neither value
    let run_env = std::fs::read(format!("/proc/{}/environ", run.id())).unwrap();
    no_value_in(&String::from_utf8_lossy(&run_env));
    assert!(!String::from_utf8_lossy(&run_env).contains("DB_PASSWORD"));
    send(run.id(), "TERM");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(128 + 15), "{}", env.run_output());
    no_value_in(&env.run_output());
}

#[test]
fn a_rotated_file_is_rewritten_and_the_command_signalled() {
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    let mut run = env.spawn_run(
        &["--file", "prod/app/token=token", "--on-change", "signal"],
        r#"OUT=$1
           show() { cat "$STRONGROOM_SECRETS_DIR/token" > "$OUT/seen.tmp"; mv "$OUT/seen.tmp" "$OUT/seen"; }
           trap show HUP
           show
           while :; do sleep 0.1; done"#,
    );
    wait_until("the first value", || {
        env.read_out("seen").as_deref() == Some(VALUE)
    });
    // another process writes a new version while the command runs
    env.put("prod/app/token", NEW_VALUE.as_bytes());
    wait_until("the rotated value", || {
        env.read_out("seen").as_deref() == Some(NEW_VALUE)
    });
    assert!(
        run.try_wait().unwrap().is_none(),
        "the command was not kept"
    );
    send(run.id(), "TERM");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(128 + 15), "{}", env.run_output());
    no_value_in(&env.run_output());
    // both reads are on record, and the chain verifies across the processes
    let log = std::fs::read_to_string(env.path("store.db.audit.jsonl")).unwrap();
    let reads = log
        .lines()
        .filter(|l| l.contains("\"read\"") && l.contains("prod/app/token"))
        .count();
    assert_eq!(reads, 2, "{log}");
    env.verify_audit();
}

#[test]
fn a_rotated_env_value_restarts_the_command() {
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    let mut run = env.spawn_run(
        // restart is the default with --env
        &["--env", "TOKEN=prod/app/token", "--grace", "5"],
        r#"OUT=$1
           echo start >> "$OUT/starts"
           printf %s "$TOKEN" > "$OUT/seen.tmp"; mv "$OUT/seen.tmp" "$OUT/seen"
           while :; do sleep 0.1; done"#,
    );
    wait_until("the first value", || {
        env.read_out("seen").as_deref() == Some(VALUE)
    });
    env.put("prod/app/token", NEW_VALUE.as_bytes());
    wait_until("the restarted command", || {
        env.read_out("seen").as_deref() == Some(NEW_VALUE)
    });
    assert_eq!(env.read_out("starts").unwrap(), "start\nstart\n");
    send(run.id(), "TERM");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(128 + 15), "{}", env.run_output());
    no_value_in(&env.run_output());
}

#[test]
fn bad_specs_exit_with_their_codes_and_start_nothing() {
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    env.put("prod/app/binary", b"\xff\xfe not utf-8");
    let start = r#"touch "$1/started""#;
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["--file", "prod/app/token=sub/token"],
            2,
            "plain file name",
        ),
        (&["--file", "prod/app/token=.."], 2, "plain file name"),
        (&["--file", "prod/app/token"], 2, "SECRET_PATH=DEST"),
        (&["--env", "TOKEN"], 2, "NAME=SECRET_PATH"),
        (&["--env", "TOKEN=prod/app/missing"], 3, "prod/app/missing"),
        (&["--env", "TOKEN=prod/app/binary"], 19, "prod/app/binary"),
        (
            &["--signal", "NOPE", "--file", "prod/app/token=t"],
            2,
            "--signal",
        ),
    ];
    for (opts, code, says) in cases {
        let err = fails(&env.run(opts, start), code);
        assert!(err.contains(says), "{opts:?}: {err}");
        assert!(
            env.read_out("started").is_none(),
            "{opts:?} started the command"
        );
    }
    // no command after --
    let mut args = vec!["run".to_owned()];
    args.extend(env.store_args());
    args.extend(["--env".to_owned(), "TOKEN=prod/app/token".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = fails(&env.output(&args, b""), 2);
    assert!(err.contains("no command"), "{err}");
    // a command that does not exist
    let mut args = vec!["run".to_owned()];
    args.extend(env.store_args());
    args.extend(["--env", "TOKEN=prod/app/token", "--", "/nonexistent/cmd"].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(&env.output(&args, b""), 127);
    // a value that cannot be a variable can still be a file
    ok(&env.run(&["--file", "prod/app/binary=bin"], "exit 0"));
}

#[test]
fn the_exit_code_table_lists_runs_codes() {
    let env = Env::new();
    let help = ok(&env.output(&["--help"], b""));
    let readme = include_str!("../README.md");
    for code in ["19", "126", "127"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "--help does not list {code}"
        );
        assert!(
            readme.contains(&format!("| {code} ")),
            "the README does not list {code}"
        );
    }
    assert!(help.contains("128+N"));
    assert!(readme.contains("128+N"));
}

#[test]
fn as_pid_1_run_reaps_orphans_and_keeps_the_commands_status() {
    let Some(mut unshare) = pid_namespace() else {
        eprintln!("skipped: unshare cannot make a PID namespace here");
        return;
    };
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    let args = env.run_args(
        &["--env", "TOKEN=prod/app/token"],
        // an orphan (re-parented to PID 1, run) ends; once it is reaped its
        // /proc entry goes (a zombie keeps it)
        r#"OUT=$1
           cat /proc/1/comm > "$OUT/pid1"
           sh -c 'sleep 0.2 & echo $! > "$0/orphan"' "$OUT"
           pid=$(cat "$OUT/orphan"); i=0
           while [ -e "/proc/$pid" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
           if [ -e "/proc/$pid" ]; then echo zombie > "$OUT/reaped"; else echo reaped > "$OUT/reaped"; fi
           exit 7"#,
    );
    for k in STRONGROOM_VARS {
        unshare.env_remove(k);
    }
    let o = unshare
        .arg(env!("CARGO_BIN_EXE_strongroom"))
        .args(&args)
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    fails(&o, 7);
    assert_eq!(env.read_out("pid1").unwrap().trim(), "strongroom");
    assert_eq!(env.read_out("reaped").unwrap().trim(), "reaped");
}

#[test]
fn the_private_directory_is_made_in_a_tmpfs_runtime_dir_and_removed_on_failure() {
    let Some(runtime) = tmpfs_dir() else {
        eprintln!("skipped: no tmpfs at /dev/shm");
        return;
    };
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    env.put("prod/app/binary", b"\xff not utf-8");
    let entries = || std::fs::read_dir(runtime.path()).unwrap().count();
    let run = |opts: &[&str], command: &[&str]| {
        let mut args = vec!["run".to_owned()];
        args.extend(env.store_args());
        args.extend(opts.iter().map(|s| (*s).to_owned()));
        args.push("--".to_owned());
        args.extend(command.iter().map(|s| (*s).to_owned()));
        env.command(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .output()
            .unwrap()
    };
    let out = env.out().display().to_string();
    // the directory is made there
    let o = run(
        &["--file", "prod/app/token=token"],
        &[
            "sh",
            "-c",
            r#"printf %s "$STRONGROOM_SECRETS_DIR" > "$1/dir""#,
            "sh",
            &out,
        ],
    );
    ok(&o);
    let dir = PathBuf::from(env.read_out("dir").unwrap());
    assert_eq!(dir.parent().unwrap(), runtime.path());
    assert_eq!(entries(), 0);
    // and removed when the command cannot start, or a value cannot be a variable
    fails(
        &run(&["--file", "prod/app/token=token"], &["/nonexistent/cmd"]),
        127,
    );
    assert_eq!(entries(), 0);
    fails(
        &run(
            &[
                "--file",
                "prod/app/token=token",
                "--env",
                "B=prod/app/binary",
            ],
            &["true"],
        ),
        19,
    );
    assert_eq!(entries(), 0);
}

#[test]
fn sigterm_during_a_restart_ends_run_without_starting_the_command_again() {
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    let mut run = env.spawn_run(
        &["--env", "TOKEN=prod/app/token", "--grace", "20"],
        // asked to stop, it takes its time (well within the grace period)
        r#"OUT=$1
           trap 'echo stopping > "$OUT/stopping"; sleep 1; exit 5' TERM
           echo start >> "$OUT/starts"
           echo ready > "$OUT/ready"
           while :; do sleep 0.1; done"#,
    );
    wait_until("the command to start", || env.read_out("ready").is_some());
    env.put("prod/app/token", NEW_VALUE.as_bytes());
    wait_until("the restart to stop the command", || {
        env.read_out("stopping").is_some()
    });
    send(run.id(), "TERM");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(5), "{}", env.run_output());
    assert_eq!(env.read_out("starts").unwrap(), "start\n");
}

#[test]
fn on_change_none_only_rewrites_the_files() {
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    let mut run = env.spawn_run(
        &["--file", "prod/app/token=token", "--on-change", "none"],
        r#"OUT=$1
           trap 'echo hup > "$OUT/hup"' HUP
           echo start >> "$OUT/starts"
           while :; do
             cat "$STRONGROOM_SECRETS_DIR/token" > "$OUT/seen.tmp"; mv "$OUT/seen.tmp" "$OUT/seen"
             sleep 0.1
           done"#,
    );
    wait_until("the first value", || {
        env.read_out("seen").as_deref() == Some(VALUE)
    });
    env.put("prod/app/token", NEW_VALUE.as_bytes());
    wait_until("the rewritten file", || {
        env.read_out("seen").as_deref() == Some(NEW_VALUE)
    });
    send(run.id(), "TERM");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(128 + 15), "{}", env.run_output());
    assert!(env.read_out("hup").is_none(), "the command was signalled");
    assert_eq!(env.read_out("starts").unwrap(), "start\n");
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let env = Env::new();
    env.put("prod/app/token", VALUE.as_bytes());
    let mut run = env.spawn_run(
        &["--env", "TOKEN=prod/app/token", "--grace", "1"],
        r#"OUT=$1
           trap '' TERM
           echo start >> "$OUT/starts"
           printf %s "$TOKEN" > "$OUT/seen.tmp"; mv "$OUT/seen.tmp" "$OUT/seen"
           while :; do sleep 0.1; done"#,
    );
    wait_until("the first value", || {
        env.read_out("seen").as_deref() == Some(VALUE)
    });
    env.put("prod/app/token", NEW_VALUE.as_bytes());
    wait_until("the command killed and started again", || {
        env.read_out("seen").as_deref() == Some(NEW_VALUE)
    });
    assert_eq!(env.read_out("starts").unwrap(), "start\nstart\n");
    // it ignores SIGTERM, not SIGQUIT (passed on like the others)
    send(run.id(), "QUIT");
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(128 + 3), "{}", env.run_output());
}
