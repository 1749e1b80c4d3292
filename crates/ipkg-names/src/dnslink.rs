//! DNSLink values (spec: <https://dnslink.dev/>, ipfs/specs
//! `src/dnslink.md`): the TXT record at `_dnslink.<domain>` holds
//! `dnslink=/ipns/<name>` or `dnslink=/ipfs/<cid>`.
//!
//! Pure: this module parses the TXT strings a resolver found; looking them
//! up is ipkg's `ops::resolve::names`. When a domain has several `dnslink=` values, the
//! lexicographically first one wins, as Kubo and the spec do, so every
//! client picks the same one.

/// The most DNSLink hops a resolution may take (`/ipns/<domain>` values
/// pointing at other domains), as in Kubo.
pub const MAX_RECURSION: usize = 32;

/// What a DNSLink points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/ipns/k51…`: a key.
    Key(String),
    /// `/ipns/other.example`: another DNSLink domain.
    Domain(String),
    /// `/ipfs/<cid>[/path]`.
    Ipfs(String),
}

/// The DNSLink target among a domain's TXT strings (each already the
/// concatenation of one record's character strings), or why there is none.
pub fn parse_txt(records: &[String]) -> Result<Target, String> {
    let mut values: Vec<&str> = records
        .iter()
        .filter_map(|r| r.trim().strip_prefix("dnslink="))
        .map(str::trim)
        .filter(|v| v.starts_with("/ipns/") || v.starts_with("/ipfs/"))
        .collect();
    values.sort_unstable();
    let Some(v) = values.first() else {
        return Err("no `dnslink=/ipns/…` or `dnslink=/ipfs/…` TXT record".into());
    };
    if let Some(rest) = v.strip_prefix("/ipfs/") {
        return Ok(Target::Ipfs(rest.trim_end_matches('/').to_owned()));
    }
    let rest = v.trim_start_matches("/ipns/");
    let name = rest.split('/').next().unwrap_or("");
    if name.is_empty() {
        return Err(format!("`{v}` names nothing"));
    }
    if name.contains('.') {
        Ok(Target::Domain(name.to_owned()))
    } else {
        Ok(Target::Key(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_value() {
        let recs = vec![
            "v=spf1 -all".to_owned(),
            "dnslink=/ipns/k51b".to_owned(),
            "dnslink=/ipns/k51a".to_owned(),
        ];
        assert_eq!(parse_txt(&recs), Ok(Target::Key("k51a".into())));
        assert_eq!(
            parse_txt(&["dnslink=/ipns/other.example".into()]),
            Ok(Target::Domain("other.example".into()))
        );
        assert_eq!(
            parse_txt(&["dnslink=/ipfs/bafyx/".into()]),
            Ok(Target::Ipfs("bafyx".into()))
        );
        assert!(parse_txt(&["hello".into()]).is_err());
        assert!(parse_txt(&["dnslink=/ipns/".into()]).is_err());
    }
}
