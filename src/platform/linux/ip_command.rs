//! Running iproute2's `ip`, which every Linux system that can run a VPN
//! has: one command, its output, or many commands in one `-batch`.

use std::io;
use std::process::Command;

/// Runs `ip ARGS`; an error names the command and carries `ip`'s message.
/// Messages are in English (`LC_ALL=C`): callers recognise "nothing to
/// delete" by them.
pub fn ip<S: AsRef<str>>(args: &[S]) -> io::Result<()> {
    ip_output(args).map(|_| ())
}

/// Like [`ip`], returning what it printed.
pub fn ip_output<S: AsRef<str>>(args: &[S]) -> io::Result<String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = Command::new("ip")
        .args(&args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("ip {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs many `ip FAMILY ...` commands with one `ip FAMILY -batch -`
/// process: a fleet's 10 000 routes take 0.06 s instead of ~10 s of one
/// process each. Each command is `FAMILY` (`-4` or `-6`) followed by its
/// words. Stops at the first failure, like running them one by one; the
/// error names the command that failed.
pub fn ip_batch(family: &str, commands: &[&[String]]) -> io::Result<()> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("ip")
        .args([family, "-batch", "-"])
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("ip {family} -batch: {e}")))?;
    let mut script = String::new();
    for c in commands {
        script.push_str(&c.join(" "));
        script.push('\n');
    }
    let mut stdin = child.stdin.take().expect("piped");
    // A write error means ip exited early: its status and message say why.
    let _ = stdin.write_all(script.as_bytes());
    drop(stdin);
    let out = child.wait_with_output()?;
    if out.status.success() {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&out.stderr);
    // "Command failed -:N": the Nth line.
    let failed = message
        .lines()
        .find_map(|l| l.strip_prefix("Command failed -:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .and_then(|n| commands.get(n.wrapping_sub(1)))
        .map(|c| c.join(" "))
        // A command ip's parser refuses ends the batch without a line
        // number; its message names the offending word.
        .unwrap_or_else(|| format!("-batch of {} commands", commands.len()));
    let detail: Vec<&str> = message
        .lines()
        .filter(|l| !l.starts_with("Command failed"))
        .collect();
    Err(io::Error::other(format!(
        "ip {family} {failed}: {}",
        detail.join("; ").trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_batch_names_the_command_that_failed() {
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!(
                "SKIPPED a_failed_batch_names_the_command_that_failed: no ip(8) (apt install iproute2)"
            );
            assert!(std::env::var_os("CI").is_none(), "CI must have ip(8)");
            return;
        }
        let good = words("route show table 254");
        // Refused by the kernel (a deletion in a table that does not exist:
        // changes nothing): ip names the line.
        let absent = words("route del 10.255.255.0/24 dev lo table 251");
        let e = ip_batch("-4", &[&good, &absent, &good]).unwrap_err().to_string();
        assert!(
            e.starts_with("ip -4 route del 10.255.255.0/24 dev lo table 251: "),
            "{e}"
        );
        // Refused by ip's own parser: no line number, the message names the word.
        let bad = words("route replace 10.3.0.0/33 dev lo");
        let e = ip_batch("-4", &[&good, &bad, &good]).unwrap_err().to_string();
        assert!(
            e.starts_with("ip -4 -batch of 3 commands: ") && e.contains("10.3.0.0/33"),
            "{e}"
        );
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }
}
