//! The `cnn` command line: clap's parser in front of the commands in `cnn::cli`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use cnn::cli;
use cnn::report::Format;

/// Define convolutional networks as layer graphs, check their shapes before anything runs,
/// and execute them with reverse-mode autograd.
#[derive(Parser)]
#[command(name = "cnn", version, about)]
struct Cli {
    /// Without a command, `cnn` opens the REPL.
    #[command(subcommand)]
    command: Option<Command>,
    /// The memory budget for tensors, lists and strings, such as 512M or 4G (powers of
    /// 1024); an allocation over it is refused with E0503. Default: the memory available at
    /// start (cgroup limit or MemAvailable), minus a margin.
    #[arg(long, global = true, value_name = "SIZE", value_parser = cnn::tensor::memory::parse_size)]
    max_memory: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a script, then run it.
    Run {
        /// The `.cnn` script.
        file: PathBuf,
        /// Skip the static checker: only parse, then run (errors show up when they happen).
        #[arg(long)]
        no_check: bool,
        /// Seed the random generator before the program runs, as `seed(N)` would.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        seed: Option<i64>,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Check a script without running it.
    Check {
        /// The `.cnn` script.
        file: PathBuf,
        /// Print each `let` with its inferred type, `LINE:COL  name : type`.
        #[arg(long)]
        shapes: bool,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Open the interactive REPL (also what `cnn` alone does).
    Repl,
    /// Print a net's summary: layers, output shapes, parameters, receptive fields (and MACs
    /// for a concrete --input).
    Summary {
        /// The `.cnn` script that defines the net.
        file: PathBuf,
        /// The net's name; it is built with its default parameters.
        net: String,
        /// A concrete input shape, comma-separated: 1,3,32,32.
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
        input: Option<Vec<u32>>,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Print the long explanation of a diagnostic code, such as E0302.
    Explain {
        /// The code.
        code: String,
    },
}

/// The `--format` values.
#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    /// Rendered for people.
    Human,
    /// One JSON object per diagnostic, one per line.
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Human => Format::Human,
            OutputFormat::Json => Format::Json,
        }
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                cli::EXIT_USAGE
            } else {
                cli::EXIT_OK
            });
        }
    };
    match cli.max_memory {
        Some(bytes) => cnn::tensor::memory::set_limit(bytes),
        // Read the memory available now, before anything is allocated.
        None => _ = cnn::tensor::memory::limit(),
    }
    let code = cnn::on_big_stack(move || match cli.command.unwrap_or(Command::Repl) {
        Command::Repl => cnn::repl::run(),
        Command::Run {
            file,
            no_check,
            seed,
            format,
        } => cli::run_file(&file, format.into(), no_check, seed),
        Command::Check {
            file,
            shapes,
            format,
        } => cli::check_file(&file, format.into(), shapes),
        Command::Summary {
            file,
            net,
            input,
            format,
        } => {
            let input: Option<Vec<usize>> =
                input.map(|dims| dims.into_iter().map(|d| d as usize).collect());
            cli::summary_file(&file, &net, input.as_deref(), format.into())
        }
        Command::Explain { code } => cli::explain(&code),
    });
    std::process::exit(code);
}
