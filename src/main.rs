//! `mlvpn-rs`: the command-line front end.
#![deny(unsafe_code)]

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mlvpn_keys::PrivateKey;
use mlvpn_rs::config::Config;
use mlvpn_rs::daemon::parent::DaemonError;
use mlvpn_rs::import_mlvpn::ImportError;
use mlvpn_rs::io::control;
use mlvpn_rs::proto::stats::Status;

/// What a command could not do; printed as one line on stderr (scripts
/// and tests read these texts). Errors of other crates keep their message.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("mlvpn-rs: missing -c FILE (see mlvpn-rs --help)")]
    MissingConfig,
    /// The config file does not load (its own message names the file).
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    HookScripts(String),
    #[error("{file}: {error}")]
    ReadImport { file: String, error: std::io::Error },
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("mlvpn-rs genkey: {0}")]
    Genkey(std::io::Error),
    #[error("mlvpn-rs pubkey: reading stdin: {0}")]
    PubkeyRead(std::io::Error),
    #[error("mlvpn-rs pubkey: expected a private key on stdin")]
    PubkeyMissing,
    #[error("mlvpn-rs pubkey: stdin: {0}")]
    PubkeyInvalid(String),
    #[error("mlvpn-rs status: {0}")]
    Status(std::io::Error),
    #[error("mlvpn-rs status: bad answer: {0}")]
    BadAnswer(String),
    #[error("mlvpn-rs: {0}")]
    Daemon(#[from] DaemonError),
}

#[derive(Parser)]
#[command(
    name = "mlvpn-rs",
    version,
    about = "Multipath bonding VPN: several uplinks, one encrypted tunnel"
)]
struct Cli {
    /// Config file; without a command, `-c FILE` means `run -c FILE`.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new private key (base64) on stdout.
    Genkey,
    /// Read a private key on stdin, print its public key.
    Pubkey,
    /// Validate a config file and explain it.
    Check,
    /// Run the tunnel in the foreground until SIGTERM/SIGINT.
    Run,
    /// Convert an MLVPN mlvpn.conf into an mlvpn-rs config (printed).
    ImportMlvpn {
        /// The mlvpn.conf to convert.
        file: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Show the running daemon's paths and counters.
    Status {
        /// Print the raw JSON document.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Print Prometheus text exposition format.
        #[arg(long)]
        prometheus: bool,
    },
}

fn main() -> ExitCode {
    // The worker is this binary re-executed by the parent (not for humans).
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == mlvpn_rs::daemon::WORKER_ARG {
        init_logging();
        return match mlvpn_rs::daemon::worker::run(&args[2]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Genkey) => genkey(),
        Some(Command::Pubkey) => pubkey(),
        Some(Command::Check) => with_config(cli.config, check),
        Some(Command::Status { json, prometheus }) => {
            with_config(cli.config, |c| status(c, json, prometheus))
        }
        Some(Command::ImportMlvpn { file }) => import_mlvpn(&file),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "mlvpn-rs", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Run) | None => with_config(cli.config, run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn with_config(file: Option<PathBuf>, f: impl FnOnce(&Path) -> Result<(), CliError>) -> Result<(), CliError> {
    match file {
        Some(f_) => f(&f_),
        None => Err(CliError::MissingConfig),
    }
}

fn import_mlvpn(file: &Path) -> Result<(), CliError> {
    let name = file.display().to_string();
    let unreadable = |error| CliError::ReadImport {
        file: name.clone(),
        error,
    };
    let meta = std::fs::metadata(file).map_err(unreadable)?;
    if meta.len() > mlvpn_rs::import_mlvpn::MAX_INPUT as u64 {
        return Err(ImportError::TooLarge(name).into());
    }
    let text = std::fs::read_to_string(file).map_err(unreadable)?;
    let toml = mlvpn_rs::import_mlvpn::convert(&text, &name)?;
    print!("{toml}");
    Ok(())
}

fn genkey() -> Result<(), CliError> {
    let key = PrivateKey::generate();
    let stdout = std::io::stdout();
    restrict_stdout_file();
    let mut out = stdout.lock();
    writeln!(out, "{}", &*key.to_base64()).map_err(CliError::Genkey)
}

/// When stdout is a regular file (`genkey > client.key`), make it 0600: the
/// shell created it with the umask's mode before we ran.
fn restrict_stdout_file() {
    use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let fd = stdout.as_fd();
    if let Ok(st) = fstat(fd) {
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG {
            let _ = fchmod(fd, Mode::from_bits_truncate(0o600));
        }
    }
}

fn pubkey() -> Result<(), CliError> {
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .map_err(CliError::PubkeyRead)?;
    if std::io::stdin().is_terminal() && text.is_empty() {
        return Err(CliError::PubkeyMissing);
    }
    let key = PrivateKey::from_base64(&text).map_err(|e| CliError::PubkeyInvalid(e.to_string()))?;
    println!("{}", key.public_key());
    Ok(())
}

fn check(file: &Path) -> Result<(), CliError> {
    let c = Config::load(file).map_err(|e| CliError::Config(e.to_string()))?;
    c.check_hook_scripts()
        .map_err(|e| CliError::HookScripts(e.to_string()))?;
    println!("{}: ok", file.display());
    println!(
        "  {} mode, interface {} ({}), mtu {}",
        match c.mode {
            mlvpn_rs::config::Mode::Client => "client",
            mlvpn_rs::config::Mode::Server => "server",
        },
        c.interface.name,
        c.interface
            .address
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        match c.interface.mtu {
            Some(m) => m.to_string(),
            None => format!("{} (default for the paths' address family)", c.tun_mtu()),
        },
    );
    println!("  public key {}", c.interface.private_key.public_key());
    for p in &c.peers {
        let ips: Vec<_> = p.allowed_ips.iter().map(|a| a.to_string()).collect();
        println!("  peer {} allowed_ips {}", p.public_key, ips.join(", "));
    }
    print_routes(&c);
    for p in &c.paths {
        let mut line = format!("  path {}: bind {}", p.name, p.bind);
        if let Some(d) = &p.device {
            line += &format!(" on {d}");
        }
        if let Some(e) = p.endpoint {
            line += &format!(" -> {e}");
        }
        if let Some(b) = p.bandwidth_up {
            line += &format!(", bandwidth_up {b} bit/s");
        }
        if p.fallback {
            line += ", fallback only";
        }
        println!("{line}");
    }
    println!("  control socket {}", c.interface.control_socket.display());
    Ok(())
}

/// `check`'s account of the routes and rules `run` would install.
fn print_routes(c: &Config) {
    use mlvpn_rs::platform::route_plan::{plan_routes, Table};
    let plan = plan_routes(c);
    let list = |nets: Vec<ipnet::IpNet>| nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
    // A fleet's thousands of routes would make one unreadable line; the
    // peer lines above list every prefix.
    let some = |nets: Vec<ipnet::IpNet>| {
        let n = nets.len();
        let shown = list(nets.into_iter().take(8).collect());
        if n > 8 {
            format!("{shown} and {} more", n - 8)
        } else {
            shown
        }
    };
    let main: Vec<_> = [false, true]
        .iter()
        .flat_map(|&v6| plan.in_table(Table::Main, v6))
        .collect();
    if !main.is_empty() {
        println!("  routes via {}: {}", c.interface.name, some(main));
    }
    if !plan.connected.is_empty() {
        println!(
            "  routed by {}'s own network (no route added): {}",
            c.interface.name,
            some(plan.connected.clone())
        );
    }
    for (v6, family) in [(false, "IPv4"), (true, "IPv6")] {
        let full = plan.in_table(Table::FullTunnel, v6);
        if !full.is_empty() {
            println!(
                "  full tunnel {family}: {} via {} {}",
                list(full),
                c.interface.name,
                mlvpn_rs::platform::full_tunnel_mechanism()
            );
        }
    }
    for (net, why) in &plan.skipped {
        println!("  warning: {net} is not routed: {why}");
    }
}

fn run(file: &Path) -> Result<(), CliError> {
    let config = Config::load(file).map_err(|e| CliError::Config(e.to_string()))?;
    init_logging();
    Ok(mlvpn_rs::daemon::parent::run(config)?)
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MLVPN_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
}

fn status(file: &Path, json: bool, prometheus: bool) -> Result<(), CliError> {
    let socket = mlvpn_rs::config::control_socket_of(file).map_err(|e| CliError::Config(e.to_string()))?;
    let text = control::query(&socket, "status").map_err(CliError::Status)?;
    if json {
        // Checked and re-escaped: the worker's text never reaches the
        // terminal as it came.
        let safe =
            mlvpn_rs::terminal_text::safe_json(&text).map_err(|e| CliError::BadAnswer(e.to_string()))?;
        println!("{safe}");
        return Ok(());
    }
    let s: Status =
        mlvpn_rs::status_json::from_json(&text).map_err(|e| CliError::BadAnswer(e.to_string()))?;
    if prometheus {
        print!("{}", mlvpn_rs::prometheus::render(&s));
        if let Some(d) = mlvpn_rs::status_json::data_path_of(&text) {
            print!("{}", mlvpn_rs::prometheus::render_data_path(&s.interface, &d));
        }
    } else {
        print!("{}", mlvpn_rs::status_table::render(&s));
        if let Some(d) = mlvpn_rs::status_json::data_path_of(&text) {
            print!("{}", mlvpn_rs::status_table::render_data_path(&d));
        }
    }
    Ok(())
}
