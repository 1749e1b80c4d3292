//! `ipkg execute ROOTFS INPUT [ARGS…]`: the pure computation of ipfs-execute,
//! with `/sbin/init` of the rootfs as the entry point. Also the limit flags
//! and the printing shared with `ipkg run --pure`.

use std::time::Duration;

use crate::ops::Error;
use crate::ops::execute::{ExecLimits, Program, PureOptions, PureOutcome, run_pure};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The root file system: a CID of a directory or of a `.tar`/`.tar.gz`
    /// file (or a local directory or archive, added first).
    #[arg(value_name = "ROOTFS")]
    rootfs: String,
    /// Mounted read-only at `/input`: a CID or a local path (added first).
    #[arg(value_name = "INPUT")]
    input: String,
    /// Arguments for `/sbin/init`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
    #[command(flatten)]
    pure: PureArgs,
}

/// Limits and memo flags of a pure run.
#[derive(Debug, Clone, clap::Args)]
pub struct PureArgs {
    /// Kill the program after this long (`90s`, `500ms`, `2m`; bare numbers are seconds).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Memory limit (`256M`, `1G`; bare numbers are bytes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Most processes the program may have at once.
    #[arg(long, value_name = "N")]
    pub pids: Option<u32>,
    /// Most bytes `/output` may hold.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_output: Option<u64>,
    /// Run even when the same run is memoised.
    #[arg(long)]
    pub no_cache: bool,
    /// Run twice and report whether the outputs differ.
    #[arg(long)]
    pub check: bool,
    /// Mount the rootfs lazily: fetch (and verify) only the blocks the
    /// program reads instead of unpacking the whole tree first.
    #[arg(long)]
    pub lazy: bool,
}

impl PureArgs {
    pub fn limits(&self) -> ExecLimits {
        ExecLimits {
            timeout: self.timeout,
            memory: self.memory,
            pids: self.pids,
            max_output: self.max_output,
        }
    }
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let opts = PureOptions {
        program: Program::RootfsInit,
        rootfs: Some(args.rootfs),
        input: Some(args.input),
        args: args.args,
        limits: args.pure.limits(),
        no_cache: args.pure.no_cache,
        check: args.pure.check,
        lazy: args.pure.lazy,
    };
    pure(&opts, ctx)
}

/// Run a pure computation and print it: the output CID on stdout, the rest
/// on stderr; the exit code is the program's.
pub(crate) fn pure(opts: &PureOptions, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let p = &ctx.printer;
    let shown = match &opts.program {
        Program::RootfsInit => "/sbin/init".to_string(),
        Program::InRootfs(s) | Program::Package(s) => s.clone(),
    };
    p.status("Running", format!("`{shown}` in a pure sandbox"));
    let out = run_pure(&layout, opts)?;
    report(&out, &shown, ctx)?;
    if let Some(second) = out.second
        && second != out.output
    {
        return Err(Error::NotReproducible {
            program: shown,
            first: out.output.to_string(),
            second: second.to_string(),
        });
    }
    ctx.set_exit(out.code);
    Ok(())
}

fn report(out: &PureOutcome, shown: &str, ctx: &Ctx) -> Result<(), Error> {
    let p = &ctx.printer;
    if out.cached {
        p.status(
            "Cached",
            format!("`{shown}` exited with {} (memoised)", out.code),
        );
    } else {
        p.status(
            "Finished",
            format!(
                "`{shown}` exited with {} in {:.3}s",
                out.code,
                out.elapsed.as_secs_f64()
            ),
        );
    }
    if let Some(second) = &out.second {
        if *second == out.output {
            p.status("Reproduced", format!("both runs gave `{second}`"));
        } else {
            p.warn(format!(
                "the outputs differ: `{}` then `{second}`",
                out.output
            ));
        }
    }
    if p.json {
        p.json(&serde_json::json!({
            "output": out.output.to_string(),
            "code": out.code,
            "cached": out.cached,
            "key": out.key,
            "second": out.second.map(|c| c.to_string()),
        }))
        .map_err(super::stdout_err)
    } else {
        p.data(out.output.to_string()).map_err(super::stdout_err)
    }
}

/// `90s`, `500ms`, `2m`, `1h`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like `90s`, `500ms`, `2m`)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// `256M`, `1G`, `512K`, `64MiB`, or bare bytes (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (like `256M`, `1G`)"))?;
    let mult: u64 = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use K, M, G or T)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2kb"), Ok(2048));
        assert!(parse_size("12X").is_err());
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("1y").is_err());
    }
}
