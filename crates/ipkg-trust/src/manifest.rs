//! `ipkg.toml`: the package manifest (normative text: `spec/manifest.md`).
//!
//! [`Manifest::parse`] reads the TOML text and checks everything that can be
//! checked without the package tree: syntax, known keys (with a did-you-mean
//! for a misspelt one), types, names, versions and path syntax. Checks that
//! need the tree (paths exist, stay inside the package, hooks are executable,
//! size limits) are [`Manifest::validate_tree`], a pure function over a
//! [`TreeView`]; [`MemTree`] is an in-memory tree, and callers implement the
//! trait over a directory or a UnixFS DAG.
//!
//! Every error names the file and the key, and the line and column when the
//! key is in the text: `ipkg.toml:3:8: [package] name: …`.
//!
//! Non-goals: reading files (the caller passes the text), writing manifests.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

/// The version of the manifest and statement formats this code implements.
pub const SPEC_VERSION: u32 = 1;

/// Targets a package may declare. `any` means architecture-independent and
/// must stand alone.
pub const KNOWN_TARGETS: &[&str] = &[
    "any",
    "x86_64-linux",
    "aarch64-linux",
    "armv7-linux",
    "riscv64-linux",
    "i686-linux",
    "x86_64-macos",
    "aarch64-macos",
    "x86_64-freebsd",
];

/// Size limits on a package tree (`spec/manifest.md` §"Size limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files, directories and symlinks, the root not counted.
    pub max_entries: u64,
    /// Sum of all file sizes.
    pub max_total_bytes: u64,
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Components in a path (`bin/xmr` has 2).
    pub max_depth: usize,
    /// Bytes in a path.
    pub max_path_bytes: usize,
    /// Bytes in one path component.
    pub max_component_bytes: usize,
}

/// The limits of `ipkg-spec 1`.
pub const LIMITS: Limits = Limits {
    max_entries: 100_000,
    max_total_bytes: 4 << 30,
    max_file_bytes: 2 << 30,
    max_depth: 32,
    max_path_bytes: 1024,
    max_component_bytes: 255,
};

/// Default and maximum hook timeout, in seconds.
pub const DEFAULT_HOOK_TIMEOUT: u32 = 60;
pub const MAX_HOOK_TIMEOUT: u32 = 3600;

/// A parsed, checked `ipkg.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub spec: u32,
    pub package: Package,
    /// Command name → path inside the package.
    pub commands: BTreeMap<String, String>,
    pub hooks: Hooks,
    /// Package name → version requirement. Empty for a true all-in-one package.
    pub dependencies: BTreeMap<String, semver::VersionReq>,
    /// Host programs expected on `PATH`.
    pub requires: Vec<String>,
}

/// `[package]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: semver::Version,
    pub description: Option<String>,
    pub license: Option<String>,
    pub homepage: Option<String>,
    pub authors: Vec<String>,
    pub targets: Vec<String>,
}

/// The lifecycle events a hook can run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookKind {
    PreInstall,
    PostInstall,
    PreRemove,
    PostRemove,
    PostSwitch,
}

impl HookKind {
    pub const ALL: [HookKind; 5] = [
        HookKind::PreInstall,
        HookKind::PostInstall,
        HookKind::PreRemove,
        HookKind::PostRemove,
        HookKind::PostSwitch,
    ];

    /// The manifest key (`post-install`).
    pub fn key(self) -> &'static str {
        match self {
            HookKind::PreInstall => "pre-install",
            HookKind::PostInstall => "post-install",
            HookKind::PreRemove => "pre-remove",
            HookKind::PostRemove => "post-remove",
            HookKind::PostSwitch => "post-switch",
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// `[hooks]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// Hook → path inside the package.
    pub scripts: BTreeMap<HookKind, String>,
    /// Seconds each hook may run.
    pub timeout: u32,
    /// Whether hooks ask to run outside the sandbox (the user must agree).
    pub host_access: bool,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            scripts: BTreeMap::new(),
            timeout: DEFAULT_HOOK_TIMEOUT,
            host_access: false,
        }
    }
}

impl Hooks {
    pub fn get(&self, kind: HookKind) -> Option<&str> {
        self.scripts.get(&kind).map(String::as_str)
    }
}

/// A line and column (1-based) in the manifest text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Why a manifest was refused. Each variant names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: invalid TOML: {message}", loc(.file, .pos))]
    Syntax {
        file: PathBuf,
        pos: Option<Pos>,
        message: String,
    },
    #[error("{}: {key}: unknown {what}{}", loc(.file, .pos), suggest(.suggestion, .expected))]
    UnknownKey {
        file: PathBuf,
        pos: Option<Pos>,
        /// `[package] nmae`.
        key: String,
        /// `field` or `table`.
        what: &'static str,
        suggestion: Option<String>,
        expected: Vec<&'static str>,
    },
    #[error("{}: {key}: {message}", loc(.file, .pos))]
    Invalid {
        file: PathBuf,
        pos: Option<Pos>,
        key: String,
        message: String,
    },
}

impl ManifestError {
    /// The key the error is about (`[package] name`), if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ManifestError::Syntax { .. } => None,
            ManifestError::UnknownKey { key, .. } | ManifestError::Invalid { key, .. } => Some(key),
        }
    }
}

fn loc(file: &Path, pos: &Option<Pos>) -> String {
    match pos {
        Some(p) => format!("{}:{}:{}", file.display(), p.line, p.column),
        None => file.display().to_string(),
    }
}

fn suggest(suggestion: &Option<String>, expected: &[&'static str]) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None if expected.is_empty() => String::new(),
        None => format!(
            "; expected one of {}",
            expected
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ---------------------------------------------------------------------------
// Raw serde form.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    package: RawPackage,
    #[serde(default)]
    commands: BTreeMap<String, String>,
    #[serde(default)]
    hooks: RawHooks,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    requires: RawRequires,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    spec: Option<u32>,
    name: String,
    version: String,
    description: Option<String>,
    license: Option<String>,
    homepage: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    targets: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHooks {
    pre_install: Option<String>,
    post_install: Option<String>,
    pre_remove: Option<String>,
    post_remove: Option<String>,
    post_switch: Option<String>,
    timeout: Option<u32>,
    host_access: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    #[serde(default)]
    programs: Vec<String>,
}

/// Known keys per table; `None` means any key (checked by other rules).
fn schema(table: &str) -> Option<&'static [&'static str]> {
    match table {
        "" => Some(&["package", "commands", "hooks", "dependencies", "requires"]),
        "package" => Some(&[
            "spec",
            "name",
            "version",
            "description",
            "license",
            "homepage",
            "authors",
            "targets",
        ]),
        "hooks" => Some(&[
            "pre-install",
            "post-install",
            "pre-remove",
            "post-remove",
            "post-switch",
            "timeout",
            "host-access",
        ]),
        "requires" => Some(&["programs"]),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Parsing.

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    doc: DeTable<'a>,
}

impl Ctx<'_> {
    fn pos_of(&self, offset: usize) -> Pos {
        pos_at(self.text, offset)
    }

    /// Where the value of `table.key` (or of the table itself) is.
    fn pos_of_key(&self, table: &str, key: Option<&str>) -> Option<Pos> {
        let (tk, tv) = self.doc.get_key_value(table)?;
        let Some(key) = key else {
            return Some(self.pos_of(tk.span().start));
        };
        let DeValue::Table(t) = tv.get_ref() else {
            return None;
        };
        let (_, v) = t.get_key_value(key)?;
        Some(self.pos_of(v.span().start))
    }

    fn invalid(&self, table: &str, key: Option<&str>, message: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            file: self.file.to_path_buf(),
            pos: self.pos_of_key(table, key),
            key: render_key(table, key),
            message: message.into(),
        }
    }

    /// Unknown keys, with a suggestion, before serde sees them.
    fn check_known_keys(&self) -> Result<(), ManifestError> {
        let unknown = |table: &str, key: &str, span_start: usize, is_table: bool| {
            let expected = schema(table).unwrap_or(&[]);
            ManifestError::UnknownKey {
                file: self.file.to_path_buf(),
                pos: Some(self.pos_of(span_start)),
                key: if table.is_empty() && is_table {
                    format!("[{key}]")
                } else {
                    render_key(table, Some(key))
                },
                what: if is_table { "table" } else { "field" },
                suggestion: did_you_mean(key, expected).map(str::to_owned),
                expected: expected.to_vec(),
            }
        };
        let top = schema("").unwrap_or(&[]);
        for (k, v) in self.doc.iter() {
            let is_table = matches!(v.get_ref(), DeValue::Table(_));
            if !top.contains(&k.get_ref().as_ref()) {
                return Err(unknown("", k.get_ref(), k.span().start, is_table));
            }
            let (Some(known), DeValue::Table(t)) = (schema(k.get_ref()), v.get_ref()) else {
                continue;
            };
            for (k2, v2) in t.iter() {
                if !known.contains(&k2.get_ref().as_ref()) {
                    let nested = matches!(v2.get_ref(), DeValue::Table(_));
                    return Err(unknown(k.get_ref(), k2.get_ref(), k2.span().start, nested));
                }
            }
        }
        Ok(())
    }

    /// Turn a serde error into one naming the key, found from its span.
    fn serde_error(&self, e: toml::de::Error) -> ManifestError {
        let message = e.message().to_owned();
        let start = e.span().map(|s| s.start);
        // `missing field `x`` points at the table; name the field.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            let table = start
                .and_then(|s| self.key_path_at(s).into_iter().next())
                .unwrap_or_default();
            if table.is_empty() {
                return ManifestError::Invalid {
                    file: self.file.to_path_buf(),
                    pos: None,
                    key: format!("[{field}]"),
                    message: "this table is required".into(),
                };
            }
            return ManifestError::Invalid {
                file: self.file.to_path_buf(),
                pos: self.pos_of_key(&table, None),
                key: render_key(&table, Some(field)),
                message: "this field is required".into(),
            };
        }
        let path = start.map(|s| self.key_path_at(s)).unwrap_or_default();
        let key = match path.as_slice() {
            [] => "(document)".to_owned(),
            [t] => format!("[{t}]"),
            [t, rest @ ..] => render_key(t, Some(&rest.join("."))),
        };
        ManifestError::Invalid {
            file: self.file.to_path_buf(),
            pos: start.map(|s| self.pos_of(s)),
            key,
            message,
        }
    }

    /// The chain of keys whose key or value contains byte `offset`. A table's
    /// span may cover only its header, so every table is searched.
    fn key_path_at(&self, offset: usize) -> Vec<String> {
        fn search(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
            for (k, v) in table.iter() {
                path.push(k.get_ref().to_string());
                if let DeValue::Table(t) = v.get_ref()
                    && search(t, offset, path)
                {
                    return true;
                }
                if v.span().contains(&offset) || k.span().contains(&offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        let mut path = Vec::new();
        search(&self.doc, offset, &mut path);
        path
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn pos_at(text: &str, offset: usize) -> Pos {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    Pos { line, column }
}

fn render_key(table: &str, key: Option<&str>) -> String {
    match (table.is_empty(), key) {
        (true, Some(k)) => k.to_owned(),
        (_, None) => format!("[{table}]"),
        (false, Some(k)) => {
            let quoted = if k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                k.to_owned()
            } else {
                format!("{k:?}")
            };
            format!("[{table}] {quoted}")
        }
    }
}

impl Manifest {
    /// Parse and check `ipkg.toml` text. `file` is used only in messages.
    pub fn parse(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
        let doc = DeTable::parse(text).map_err(|e| {
            let ctx_pos = e.span().map(|s| pos_at(text, s.start));
            ManifestError::Syntax {
                file: file.to_path_buf(),
                pos: ctx_pos,
                message: e.message().to_owned(),
            }
        })?;
        let ctx = Ctx {
            file,
            text,
            doc: doc.into_inner(),
        };
        // A newer spec is reported as such, not as a pile of unknown fields.
        if let Some(DeValue::Table(p)) = ctx.doc.get("package").map(|v| v.get_ref())
            && let Some(DeValue::Integer(i)) = p.get("spec").map(|v| v.get_ref())
            && i.as_str() != "1"
        {
            return Err(ctx.invalid(
                "package",
                Some("spec"),
                format!(
                    "this manifest is for ipkg-spec {}; this ipkg reads ipkg-spec {SPEC_VERSION}, upgrade ipkg",
                    i.as_str()
                ),
            ));
        }
        ctx.check_known_keys()?;
        let raw: RawManifest = toml::from_str(text).map_err(|e| ctx.serde_error(e))?;
        build(&ctx, raw)
    }

    /// True when the package declares no dependencies (an all-in-one program).
    pub fn is_aio(&self) -> bool {
        self.dependencies.is_empty()
    }

    /// Whether the package runs on `target` (`any` runs everywhere).
    pub fn supports_target(&self, target: &str) -> bool {
        self.package
            .targets
            .iter()
            .any(|t| t == "any" || t == target)
    }

    /// Check the manifest against the package tree: every command and hook
    /// path exists, is a file and stays inside the package (symlinks
    /// followed), hooks are executable, every symlink stays inside, and the
    /// tree is within [`LIMITS`]. `file` is used only in messages.
    pub fn validate_tree(
        &self,
        tree: &dyn TreeView,
        file: &Path,
    ) -> Result<TreeSummary, ManifestError> {
        self.validate_tree_with(tree, file, &LIMITS)
    }

    /// [`Manifest::validate_tree`] with other limits (for tests and tools).
    pub fn validate_tree_with(
        &self,
        tree: &dyn TreeView,
        file: &Path,
        limits: &Limits,
    ) -> Result<TreeSummary, ManifestError> {
        let err = |table: &str, key: &str, message: String| ManifestError::Invalid {
            file: file.to_path_buf(),
            pos: None,
            key: render_key(table, Some(key)),
            message,
        };
        for (cmd, path) in &self.commands {
            match resolve(tree, path) {
                Ok(EntryKind::File { .. }) => {}
                Ok(EntryKind::Dir) => {
                    return Err(err(
                        "commands",
                        cmd,
                        format!("`{path}` is a directory, not a file"),
                    ));
                }
                Ok(EntryKind::Symlink { .. }) => {
                    return Err(err(
                        "commands",
                        cmd,
                        format!("`{path}`: too many levels of symlinks"),
                    ));
                }
                Err(e) => return Err(err("commands", cmd, e.to_string())),
            }
        }
        for (kind, path) in &self.hooks.scripts {
            match resolve(tree, path) {
                Ok(EntryKind::File {
                    executable: true, ..
                }) => {}
                Ok(EntryKind::File {
                    executable: false, ..
                }) => {
                    return Err(err(
                        "hooks",
                        kind.key(),
                        format!("`{path}` is not executable; run `chmod +x {path}` before packing"),
                    ));
                }
                Ok(_) => {
                    return Err(err("hooks", kind.key(), format!("`{path}` is not a file")));
                }
                Err(e) => return Err(err("hooks", kind.key(), e.to_string())),
            }
        }
        check_tree(tree, limits).map_err(|message| ManifestError::Invalid {
            file: file.to_path_buf(),
            pos: None,
            key: "(package tree)".into(),
            message,
        })
    }
}

fn build(ctx: &Ctx<'_>, raw: RawManifest) -> Result<Manifest, ManifestError> {
    let p = raw.package;
    check_package_name(&p.name).map_err(|m| ctx.invalid("package", Some("name"), m))?;
    let version = semver::Version::parse(&p.version).map_err(|e| {
        ctx.invalid(
            "package",
            Some("version"),
            format!(
                "`{}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. `1.2.3`): {e}",
                p.version
            ),
        )
    })?;
    if let Some(d) = &p.description
        && (d.trim().is_empty() || d.chars().count() > 500 || d.contains('\n'))
    {
        return Err(ctx.invalid(
            "package",
            Some("description"),
            "must be one non-empty line of at most 500 characters",
        ));
    }
    if let Some(l) = &p.license
        && (l.trim().is_empty() || l.len() > 200)
    {
        return Err(ctx.invalid(
            "package",
            Some("license"),
            "must be a non-empty SPDX expression such as `MIT OR Apache-2.0`",
        ));
    }
    if let Some(h) = &p.homepage
        && (!(h.starts_with("https://") || h.starts_with("http://"))
            || h.chars().any(char::is_whitespace)
            || h.len() > 2048)
    {
        return Err(ctx.invalid(
            "package",
            Some("homepage"),
            format!("`{h}` is not an http(s) URL"),
        ));
    }
    if p.authors
        .iter()
        .any(|a| a.trim().is_empty() || a.len() > 200)
    {
        return Err(ctx.invalid(
            "package",
            Some("authors"),
            "each author must be a non-empty string of at most 200 bytes",
        ));
    }
    if p.targets.is_empty() {
        return Err(ctx.invalid(
            "package",
            Some("targets"),
            "list at least one target, e.g. `[\"x86_64-linux\"]` or `[\"any\"]`",
        ));
    }
    for (i, t) in p.targets.iter().enumerate() {
        check_target(t).map_err(|m| ctx.invalid("package", Some("targets"), m))?;
        if p.targets[..i].contains(t) {
            return Err(ctx.invalid("package", Some("targets"), format!("`{t}` is listed twice")));
        }
    }
    if p.targets.len() > 1 && p.targets.iter().any(|t| t == "any") {
        return Err(ctx.invalid(
            "package",
            Some("targets"),
            "`any` already covers every target and must be the only one",
        ));
    }

    for (cmd, path) in &raw.commands {
        check_command_name(cmd).map_err(|m| ctx.invalid("commands", Some(cmd), m))?;
        check_package_path(path, &LIMITS).map_err(|m| ctx.invalid("commands", Some(cmd), m))?;
    }

    let mut hooks = Hooks::default();
    let h = raw.hooks;
    for (kind, path) in [
        (HookKind::PreInstall, h.pre_install),
        (HookKind::PostInstall, h.post_install),
        (HookKind::PreRemove, h.pre_remove),
        (HookKind::PostRemove, h.post_remove),
        (HookKind::PostSwitch, h.post_switch),
    ] {
        if let Some(path) = path {
            check_package_path(&path, &LIMITS)
                .map_err(|m| ctx.invalid("hooks", Some(kind.key()), m))?;
            hooks.scripts.insert(kind, path);
        }
    }
    if let Some(t) = h.timeout {
        if t == 0 || t > MAX_HOOK_TIMEOUT {
            return Err(ctx.invalid(
                "hooks",
                Some("timeout"),
                format!("{t} is out of range; give seconds from 1 to {MAX_HOOK_TIMEOUT}"),
            ));
        }
        hooks.timeout = t;
    }
    hooks.host_access = h.host_access.unwrap_or(false);

    let mut dependencies = BTreeMap::new();
    for (dep, req) in raw.dependencies {
        check_package_name(&dep).map_err(|m| ctx.invalid("dependencies", Some(&dep), m))?;
        let parsed = semver::VersionReq::parse(&req).map_err(|e| {
            ctx.invalid(
                "dependencies",
                Some(&dep),
                format!("`{req}` is not a version requirement (e.g. `^1.2`): {e}"),
            )
        })?;
        dependencies.insert(dep, parsed);
    }

    for (i, prog) in raw.requires.programs.iter().enumerate() {
        check_command_name(prog).map_err(|m| ctx.invalid("requires", Some("programs"), m))?;
        if raw.requires.programs[..i].contains(prog) {
            return Err(ctx.invalid(
                "requires",
                Some("programs"),
                format!("`{prog}` is listed twice"),
            ));
        }
    }

    Ok(Manifest {
        spec: p.spec.unwrap_or(SPEC_VERSION),
        package: Package {
            name: p.name,
            version,
            description: p.description,
            license: p.license,
            homepage: p.homepage,
            authors: p.authors,
            targets: p.targets,
        },
        commands: raw.commands,
        hooks,
        dependencies,
        requires: raw.requires.programs,
    })
}

// ---------------------------------------------------------------------------
// Name and path rules, shared with release statements and the index.

/// Package names: `^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`.
pub fn check_package_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid package name: use 1 to 64 lowercase letters, digits and `-`, starting and ending with a letter or digit"
        ))
    }
}

/// Command and host-program names: `^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`.
pub fn check_command_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid command name: use 1 to 64 letters, digits, `.`, `_`, `+` and `-`, starting with a letter or digit"
        ))
    }
}

/// A target from [`KNOWN_TARGETS`].
pub fn check_target(target: &str) -> Result<(), String> {
    if KNOWN_TARGETS.contains(&target) {
        return Ok(());
    }
    let hint = did_you_mean(target, KNOWN_TARGETS)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_else(|| format!("; known targets: {}", KNOWN_TARGETS.join(", ")));
    Err(format!("`{target}` is not a known target{hint}"))
}

/// A path inside the package: relative, `/`-separated, no empty, `.` or `..`
/// components, no NUL or backslash, within the depth and length limits.
pub fn check_package_path(path: &str, limits: &Limits) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.starts_with('/') {
        return Err(format!(
            "`{path}` is absolute; give a path inside the package, e.g. `bin/tool`"
        ));
    }
    if path.len() > limits.max_path_bytes {
        return Err(format!(
            "the path is longer than {} bytes",
            limits.max_path_bytes
        ));
    }
    let mut depth = 0;
    for c in path.split('/') {
        depth += 1;
        match c {
            ".." => return Err(format!("`{path}` leaves the package (`..`)")),
            "" | "." => {
                return Err(format!(
                    "`{path}` has an empty or `.` component; write it as `a/b`"
                ));
            }
            _ if c.contains('\0') || c.contains('\\') => {
                return Err(format!("`{path}` contains a NUL or backslash"));
            }
            _ if c.len() > limits.max_component_bytes => {
                return Err(format!(
                    "a component of `{path}` is longer than {} bytes",
                    limits.max_component_bytes
                ));
            }
            _ => {}
        }
    }
    if depth > limits.max_depth {
        return Err(format!(
            "`{path}` is {depth} levels deep; the limit is {}",
            limits.max_depth
        ));
    }
    Ok(())
}

/// The closest of `known` to `input` by edit distance, if close enough.
pub fn did_you_mean<'k>(input: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (input.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(input, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------
// The package tree.

/// What is at a path in a package tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File { executable: bool, size: u64 },
    Dir,
    Symlink { target: String },
}

/// A read-only view of a package tree, with `/`-separated paths relative to
/// its root (`""` is the root). Implemented over a directory, a UnixFS DAG
/// or in memory ([`MemTree`]); implementations that can fail should collect
/// the tree first and report their own errors.
pub trait TreeView {
    /// The entry at `path`, without following a final symlink.
    fn kind(&self, path: &str) -> Option<EntryKind>;
    /// Call `f` for every entry but the root, in any order.
    fn visit(&self, f: &mut dyn FnMut(&str, &EntryKind));
}

/// An in-memory [`TreeView`]. Adding an entry adds its parent directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemTree {
    entries: BTreeMap<String, EntryKind>,
}

impl MemTree {
    pub fn new() -> MemTree {
        MemTree::default()
    }

    /// Add an entry (and any missing parent directories).
    pub fn insert(&mut self, path: &str, kind: EntryKind) -> &mut Self {
        let mut parent = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.entries.entry(parent.clone()).or_insert(EntryKind::Dir);
        }
        self.entries.insert(path.to_owned(), kind);
        self
    }

    pub fn file(&mut self, path: &str, size: u64, executable: bool) -> &mut Self {
        self.insert(path, EntryKind::File { executable, size })
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.insert(path, EntryKind::Dir)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.insert(
            path,
            EntryKind::Symlink {
                target: target.to_owned(),
            },
        )
    }
}

impl TreeView for MemTree {
    fn kind(&self, path: &str) -> Option<EntryKind> {
        if path.is_empty() {
            return Some(EntryKind::Dir);
        }
        self.entries.get(path).cloned()
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &EntryKind)) {
        for (p, k) in &self.entries {
            f(p, k);
        }
    }
}

/// What [`Manifest::validate_tree`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeSummary {
    pub entries: u64,
    pub files: u64,
    pub total_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("`{0}` does not exist in the package")]
    Missing(String),
    #[error(
        "`{path}` does not exist in the package: it leads through symlinks to `{missing}`, which is missing"
    )]
    Dangling { path: String, missing: String },
    #[error("`{path}` leaves the package: the symlink `{link}` points to `{target}`")]
    Escape {
        path: String,
        link: String,
        target: String,
    },
    #[error("`{0}` is not a directory")]
    NotDir(String),
    #[error("`{0}`: too many levels of symlinks")]
    Loop(String),
}

/// Follow `path` through the tree, symlinks included, never leaving it.
fn resolve(tree: &dyn TreeView, path: &str) -> Result<EntryKind, ResolveError> {
    let mut todo: Vec<String> = path.rsplit('/').map(str::to_owned).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                // Only reachable through a symlink target; `check_package_path`
                // refuses `..` in the manifest itself.
                if cur.pop().is_none() {
                    return Err(ResolveError::Escape {
                        path: path.to_owned(),
                        link: path.to_owned(),
                        target: "..".into(),
                    });
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
        let here = cur.join("/");
        match tree.kind(&here) {
            None if hops == 0 => return Err(ResolveError::Missing(path.to_owned())),
            None => {
                return Err(ResolveError::Dangling {
                    path: path.to_owned(),
                    missing: here,
                });
            }
            Some(EntryKind::Symlink { target }) => {
                hops += 1;
                if hops > 40 {
                    return Err(ResolveError::Loop(path.to_owned()));
                }
                let parent_depth = cur.len() - 1;
                if target.starts_with('/') || escapes(parent_depth, &target) {
                    return Err(ResolveError::Escape {
                        path: path.to_owned(),
                        link: here,
                        target,
                    });
                }
                cur.pop();
                todo.extend(target.rsplit('/').map(str::to_owned));
            }
            Some(EntryKind::File { .. }) if !todo.is_empty() => {
                return Err(ResolveError::NotDir(here));
            }
            Some(_) => {}
        }
    }
    tree.kind(&cur.join("/"))
        .ok_or_else(|| ResolveError::Missing(path.to_owned()))
}

/// Whether `target`, read from a directory `depth` levels below the root,
/// climbs above the root.
fn escapes(depth: usize, target: &str) -> bool {
    let mut level = depth as isize;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                level -= 1;
                if level < 0 {
                    return true;
                }
            }
            _ => level += 1,
        }
    }
    false
}

fn check_tree(tree: &dyn TreeView, limits: &Limits) -> Result<TreeSummary, String> {
    let mut summary = TreeSummary::default();
    let mut problem: Option<String> = None;
    tree.visit(&mut |path, kind| {
        if problem.is_some() {
            return;
        }
        summary.entries += 1;
        if let Err(m) = check_package_path(path, limits) {
            problem = Some(m);
            return;
        }
        match kind {
            EntryKind::File { size, .. } => {
                summary.files += 1;
                summary.total_bytes = summary.total_bytes.saturating_add(*size);
                if *size > limits.max_file_bytes {
                    problem = Some(format!(
                        "`{path}` is {size} bytes; the limit for one file is {}",
                        limits.max_file_bytes
                    ));
                }
            }
            EntryKind::Symlink { target } => {
                let depth = path.matches('/').count();
                if target.starts_with('/') || escapes(depth, target) {
                    problem = Some(format!(
                        "the symlink `{path}` points to `{target}`, outside the package"
                    ));
                }
            }
            EntryKind::Dir => {}
        }
    });
    if let Some(p) = problem {
        return Err(p);
    }
    if summary.entries > limits.max_entries {
        return Err(format!(
            "the package has {} entries; the limit is {}",
            summary.entries, limits.max_entries
        ));
    }
    if summary.total_bytes > limits.max_total_bytes {
        return Err(format!(
            "the package holds {} bytes; the limit is {}",
            summary.total_bytes, limits.max_total_bytes
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[package]
name = "xmr"
version = "1.2.3"
description = "A tool"
targets = ["x86_64-linux"]

[commands]
xmr = "bin/xmr"

[hooks]
post-install = "hooks/post-install"
timeout = 30
"#;

    fn parse(t: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(t, Path::new("ipkg.toml"))
    }

    #[test]
    fn good_manifest() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.package.name, "xmr");
        assert_eq!(m.hooks.timeout, 30);
        assert_eq!(
            m.hooks.get(HookKind::PostInstall),
            Some("hooks/post-install")
        );
        assert!(m.is_aio());
    }

    #[test]
    fn unknown_field_suggests() {
        let t = GOOD.replace("description", "descripton");
        let e = parse(&t).unwrap_err().to_string();
        assert_eq!(
            e,
            "ipkg.toml:5:1: [package] descripton: unknown field; did you mean `description`?"
        );
        let e = parse(&GOOD.replace("[hooks]", "[hook]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[hook]: unknown table; did you mean `hooks`?"),
            "{e}"
        );
    }

    #[test]
    fn type_error_names_key() {
        let e = parse(&GOOD.replace("timeout = 30", "timeout = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("ipkg.toml:13:11: [hooks] timeout: invalid type"),
            "{e}"
        );
        let e = parse(&GOOD.replace("version = \"1.2.3\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[package] version: this field is required"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_has_line_col() {
        let e = parse("[package\nname = 1").unwrap_err().to_string();
        assert!(e.starts_with("ipkg.toml:1:9: invalid TOML"), "{e}");
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("nmae", &["name", "version"]), Some("name"));
        assert_eq!(did_you_mean("zzzzzz", &["name"]), None);
    }

    #[test]
    fn tree_checks() {
        let m = parse(GOOD).unwrap();
        let mut t = MemTree::new();
        t.file("bin/xmr", 10, true)
            .file("hooks/post-install", 5, true)
            .symlink("lib/x", "../bin/xmr");
        let s = m.validate_tree(&t, Path::new("ipkg.toml")).unwrap();
        assert_eq!(s.files, 2);

        let mut t2 = t.clone();
        t2.file("hooks/post-install", 5, false);
        let e = m
            .validate_tree(&t2, Path::new("ipkg.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[hooks] post-install: `hooks/post-install` is not executable"),
            "{e}"
        );

        let mut t3 = MemTree::new();
        t3.symlink("bin/xmr", "../../etc/passwd")
            .file("hooks/post-install", 5, true);
        let e = m
            .validate_tree(&t3, Path::new("ipkg.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[commands] xmr: `bin/xmr` leaves the package"),
            "{e}"
        );

        let mut t4 = t.clone();
        t4.symlink("evil", "/etc");
        let e = m
            .validate_tree(&t4, Path::new("ipkg.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the package"), "{e}");
    }

    #[test]
    fn symlink_inside_is_followed() {
        let m = parse(GOOD).unwrap();
        let mut t = MemTree::new();
        t.file("libexec/xmr-1.2.3", 10, true)
            .symlink("bin", "libexec")
            .symlink("libexec/xmr", "xmr-1.2.3")
            .file("hooks/post-install", 1, true);
        let mut m2 = m.clone();
        m2.commands.insert("xmr".into(), "bin/xmr".into());
        m2.validate_tree(&t, Path::new("ipkg.toml")).unwrap();
        let mut loopy = MemTree::new();
        loopy
            .symlink("bin/xmr", "xmr")
            .file("hooks/post-install", 1, true);
        assert!(m.validate_tree(&loopy, Path::new("ipkg.toml")).is_err());
    }
}
