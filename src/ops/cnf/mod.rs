//! Command-not-found: which package provides a command, and what to do about
//! it when a shell cannot find one.
//!
//! - [`cmdindex`]: the command index built from the registries' signed indexes;
//! - this module: the policy and the decision, and the one way it installs.
//!
//! Owns the command index files and the `[command-not-found]` policy. Must
//! not touch installed state: installing is a child `ipkg install` process, so
//! the verified path of a user's own install is the only one.
//!
//! # The handler
//!
//! What the command-not-found handler does with the candidates the
//! [command index](self::cmdindex) gives: the policy, the decision, and the
//! one way it installs.
//!
//! The policy comes from the `[command-not-found]` table of the config file:
//!
//! ```toml
//! [command-not-found]
//! policy = "prompt"              # "prompt" (default), "never" or "auto"
//! trusted-registries = ["main"]  # the only registries "auto" installs from
//! ```
//!
//! Rules ([`decide`]): a non-interactive caller (stdin or stderr not a
//! terminal: scripts, pipes, `bash -c`) only ever gets a suggestion, whatever
//! the policy. `never` only suggests. `prompt` asks (yes/no for one
//! candidate, a choice list for several). `auto` installs without asking when
//! exactly one candidate comes from a trusted registry, asks when several do,
//! and otherwise behaves as `prompt`: an untrusted registry is never
//! installed from without a yes.
//!
//! Installing is `ipkg install --yes REGISTRY/PACKAGE@=VERSION` run as a child
//! process ([`install`]): exactly the verified path a user's own install takes.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use self::cmdindex::Candidate;
use super::{Error, Layout};

// The `[command-not-found]` table belongs to the config file's schema.
pub use super::config::{CnfConfig, Policy};

pub mod cmdindex;

/// What the handler does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Print how to install; do not ask.
    Suggest,
    /// Ask whether to install one of these (one: yes/no; several: a choice).
    Ask(Vec<&'a Candidate>),
    /// Install this one without asking.
    Install(&'a Candidate),
}

/// Apply the policy (see the module doc). `candidates` is not empty.
pub fn decide<'a>(
    config: &CnfConfig,
    candidates: &'a [Candidate],
    interactive: bool,
) -> Decision<'a> {
    if !interactive || config.policy == Policy::Never || candidates.is_empty() {
        return Decision::Suggest;
    }
    if config.policy == Policy::Auto {
        let trusted: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| config.trusted_registries.contains(&c.registry))
            .collect();
        match trusted[..] {
            [one] => return Decision::Install(one),
            [] => {}
            _ => return Decision::Ask(trusted),
        }
    }
    Decision::Ask(candidates.iter().collect())
}

/// Install `candidate` with `ipkg install --yes REGISTRY/PACKAGE@=VERSION`
/// (this same binary, the same prefix and bin dir). The child's stdout goes to
/// our stderr: a shell hook reads our stdout. Returns the child's status.
pub fn install(layout: &Layout, candidate: &Candidate) -> Result<ExitStatus, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
    let stdout = std::os::fd::AsFd::as_fd(&std::io::stderr())
        .try_clone_to_owned()
        .map_err(|e| Error::io("<stderr>", e))?;
    Command::new(&exe)
        .arg("--prefix")
        .arg(&layout.prefix)
        .arg("--bin-dir")
        .arg(&layout.bin_dir)
        .args(["install", "--yes", &candidate.install_spec()])
        .stdout(Stdio::from(stdout))
        .status()
        .map_err(|e| Error::io(exe, e))
}

/// Where an installed command is linked.
pub fn command_path(layout: &Layout, command: &str) -> PathBuf {
    layout.bin_dir.join(command)
}

/// `k51qzi5uqu5d…x8mq`: enough of a key to recognise it.
pub fn short_key(key: &str) -> String {
    if key.len() <= 20 || !key.is_ascii() {
        return key.to_owned();
    }
    format!("{}…{}", &key[..12], &key[key.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(registry: &str) -> Candidate {
        Candidate {
            command: "xmr".into(),
            registry: registry.into(),
            package: "xmr".into(),
            version: "1.2.3".into(),
            publisher: "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8".into(),
        }
    }

    #[test]
    fn policy_rules() {
        let two = [cand("alice"), cand("bob")];
        let cfg = |policy, trusted: &[&str]| CnfConfig {
            policy,
            trusted_registries: trusted.iter().map(|s| s.to_string()).collect(),
        };
        // Non-interactive: always a suggestion.
        for p in [Policy::Prompt, Policy::Never, Policy::Auto] {
            assert_eq!(decide(&cfg(p, &["alice"]), &two, false), Decision::Suggest);
        }
        assert_eq!(
            decide(&cfg(Policy::Never, &[]), &two, true),
            Decision::Suggest
        );
        assert_eq!(
            decide(&cfg(Policy::Prompt, &["alice"]), &two, true),
            Decision::Ask(vec![&two[0], &two[1]])
        );
        assert_eq!(
            decide(&cfg(Policy::Auto, &["bob"]), &two, true),
            Decision::Install(&two[1])
        );
        // Auto never installs from an untrusted registry without asking.
        assert_eq!(
            decide(&cfg(Policy::Auto, &["carol"]), &two, true),
            Decision::Ask(vec![&two[0], &two[1]])
        );
        assert_eq!(
            decide(&cfg(Policy::Auto, &["alice", "bob"]), &two, true),
            Decision::Ask(vec![&two[0], &two[1]])
        );
    }

    #[test]
    fn config_table() {
        let c: CnfConfig =
            toml::from_str("policy = \"auto\"\ntrusted-registries = [\"a\"]").unwrap();
        assert_eq!(c.policy, Policy::Auto);
        assert!(toml::from_str::<CnfConfig>("policy = \"sometimes\"").is_err());
        assert_eq!(short_key(&cand("a").publisher), "k51qzi5uqu5d…v0v8");
    }
}
