//! Host names of outbound targets, resolved under the outbound guard (SPEC section 9): a name is
//! resolved by [`GuardedResolver`], which refuses it if the [`TargetPolicy`] refuses any address
//! it resolves to ([`guard`]), and hands the checked addresses straight to the TCP connector, so
//! what was checked is what is connected to (no second lookup, no DNS rebinding). Where names
//! come from is pluggable ([`NameLookup`]): the system resolver, or a fixed table in tests.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::domain::network::TargetPolicy;

/// A name whose addresses the target policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BlockedTarget(pub String);

/// Turns a host name into addresses. The system resolver in production; tests and embedding
/// programs may put their own in [`crate::settings::Settings::names`].
pub trait NameLookup: Send + Sync {
    /// Blocking: runs on the blocking pool.
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver (`getaddrinfo`).
#[derive(Debug, Default)]
pub struct SystemNames;

impl NameLookup for SystemNames {
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
    }
}

/// A fixed table of names (tests; programs that pin their receivers' addresses). A name not in
/// it does not resolve.
#[derive(Debug, Default, Clone)]
pub struct FixedNames(pub std::collections::HashMap<String, Vec<IpAddr>>);

impl NameLookup for FixedNames {
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match self.0.get(host) {
            Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} is not a known name"))),
        }
    }
}

/// The resolver deliveries use: cheap to clone, shared by every channel.
#[derive(Clone)]
pub struct Names(pub Arc<dyn NameLookup>);

impl Default for Names {
    fn default() -> Self {
        Self(Arc::new(SystemNames))
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Names")
    }
}

/// Whether a name may be connected to: only if the policy allows every address it resolves to.
/// A name with one refused address among allowed ones is refused as a whole, so which address
/// the connection ends up on can never decide whether a refused network is reached.
pub fn guard(host: &str, addrs: Vec<SocketAddr>, targets: &TargetPolicy) -> Result<Vec<SocketAddr>, BlockedTarget> {
    if let Some((addr, reason)) = addrs.iter().find_map(|addr| targets.check(addr.ip()).err().map(|r| (addr, r))) {
        return Err(BlockedTarget(format!(
            "{host} resolves to {}, which {}; not allowed by ALLOWED_TARGET_NETWORKS",
            addr.ip(),
            reason.0
        )));
    }
    Ok(addrs)
}

/// Resolves host names and refuses those that reach a blocked address.
pub struct GuardedResolver {
    pub targets: Arc<TargetPolicy>,
    pub names: Names,
}

impl actix_tls::connect::Resolve for GuardedResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> futures_util::future::LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn StdError>>> {
        Box::pin(async move {
            let names = self.names.clone();
            let name = host.to_string();
            let addrs = actix_web::rt::task::spawn_blocking(move || names.0.lookup(&name, port))
                .await
                .map_err(|e| Box::new(e) as Box<dyn StdError>)??;
            guard(host, addrs, &self.targets).map_err(|e| Box::new(e) as Box<dyn StdError>)
        })
    }
}

/// The IP address a URL names literally, if it does (such a host is never resolved, so the guard
/// checks it before anything is sent).
pub fn literal_ip(url: &str) -> Option<IpAddr> {
    url::Url::parse(url).ok().and_then(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 443)).collect()
    }

    #[test]
    fn a_name_with_any_refused_address_is_refused_whole() {
        let policy = TargetPolicy::parse("127.0.0.1/32").unwrap();
        let mixed = guard("mixed.example", addrs(&["93.184.216.34", "10.0.0.5"]), &policy).unwrap_err();
        assert!(mixed.0.contains("10.0.0.5") && mixed.0.contains("private"), "{mixed}");
        assert!(guard("m.example", addrs(&["127.0.0.1", "127.0.0.2"]), &policy).is_err(), "one outside the allowlist");
        assert_eq!(guard("ok.example", addrs(&["93.184.216.34", "127.0.0.1"]), &policy).unwrap().len(), 2);
    }
}
