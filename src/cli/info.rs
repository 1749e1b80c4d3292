//! `ipkg info NAME`: everything about an installed package.

use crate::ops::Error;
use crate::ops::lifecycle::query::{available, info};

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package.
    name: String,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let p = &ctx.printer;
    let i = match info(&layout, &args.name) {
        Ok(i) => i,
        Err(Error::NotInstalled { name }) => {
            // Not installed: what the registries offer, if any.
            let offers = available(&layout, &name)?;
            if offers.is_empty() {
                return Err(Error::NotInstalled { name });
            }
            if p.json {
                return p
                    .json(&serde_json::to_value(&offers).unwrap_or_default())
                    .map_err(stdout_err);
            }
            p.status("Available", format!("`{name}` is not installed"));
            for o in offers {
                for l in [
                    format!("name:        {}", o.name),
                    format!("registry:    {}", o.registry),
                    format!("publisher:   {}", o.publisher),
                    format!("description: {}", o.description),
                    format!("commands:    {}", o.commands.join(", ")),
                    format!("releases:    {}", o.releases.join(", ")),
                ] {
                    p.data(l).map_err(stdout_err)?;
                }
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if p.json {
        return p
            .json(&serde_json::to_value(&i).unwrap_or_default())
            .map_err(stdout_err);
    }
    let mut lines = vec![
        format!("name:        {}", i.name),
        format!("version:     {}", i.version),
    ];
    if let Some(d) = &i.description {
        lines.push(format!("description: {d}"));
    }
    if let Some(l) = &i.license {
        lines.push(format!("license:     {l}"));
    }
    if let Some(h) = &i.homepage {
        lines.push(format!("homepage:    {h}"));
    }
    lines.push(format!("cid:         {}", i.cid));
    if let Some(r) = &i.release {
        lines.push(format!("release:     {r}"));
    }
    lines.push(format!(
        "registry:    {}",
        i.registry
            .as_deref()
            .unwrap_or("(none: installed unsigned)")
    ));
    if let Some(k) = &i.publisher {
        lines.push(format!("publisher:   {k}"));
    }
    lines.push(format!(
        "installed:   {}",
        crate::trust::format_time(i.installed_at)
    ));
    lines.push(format!("path:        {}", i.path.display()));
    for (c, link) in &i.commands {
        lines.push(format!("command:     {c} ({})", link.display()));
    }
    for (d, req) in &i.dependencies {
        lines.push(format!("depends on:  {d} {req}"));
    }
    lines.push(format!("versions:    {}", i.versions.join(", ")));
    if let Some(prev) = &i.previous {
        lines.push(format!("previous:    {prev} (`ipkg rollback {}`)", i.name));
    }
    lines.push(format!("state dir:   {}", i.state_dir.display()));
    for l in lines {
        p.data(l).map_err(stdout_err)?;
    }
    Ok(())
}
