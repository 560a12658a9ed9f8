//! `with-dynamodb-local COMMAND [ARG…]`: runs a command against a fresh, in-memory DynamoDB Local,
//! then stops it (also when the command fails). DynamoDB Local is installed when missing (into
//! `LIVECOUNT_DYNAMODB_LOCAL_DIR`, else `.local/dynamodb-local`), started on a free loopback
//! port and waited for; the command runs with `AWS_ENDPOINT_URL_DYNAMODB` set to it, and dummy
//! credentials and a region unless the environment has them. Its exit status is the command's.
//! `scripts/with-dynamodb-local.sh` runs it (`make test`, `make bench`, `make lambda-test`).

use livecount_dynamodb_local::{LaunchError, LocalProcess, Storage, repository_install_dir};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: with-dynamodb-local COMMAND [ARG...]");
        return ExitCode::from(2);
    };
    let local = match LocalProcess::start_with(&repository_install_dir(), 0, &Storage::InMemory) {
        Ok(local) => local,
        Err(error) => {
            let mut line = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                line.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("with-dynamodb-local: {line}");
            if let LaunchError::Exited { log, .. } = &error {
                eprint!("{}", std::fs::read_to_string(log).unwrap_or_default());
            }
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "with-dynamodb-local: DynamoDB Local (pid {}) on {}",
        local.pid(),
        local.endpoint()
    );
    let mut command = Command::new(&program);
    command
        .args(args)
        .env("AWS_ENDPOINT_URL_DYNAMODB", local.endpoint());
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(name).is_none() {
            command.env(name, value);
        }
    }
    let status = command.status();
    local.stop();
    match status {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(error) => {
            eprintln!("with-dynamodb-local: cannot run {program:?}: {error}");
            ExitCode::from(127)
        }
    }
}

/// The command's exit code; 128 + the signal's number if a signal ended it, as a shell says.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}
