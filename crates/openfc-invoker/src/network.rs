//! What an instance with outbound network (slirp4netns) must not reach, and the name-service files of its
//! minimal `/etc`.
//!
//! By default an instance reaches the internet and nothing of the operator's: not the host's own addresses,
//! not private (RFC 1918) or carrier-grade NAT (RFC 6598, where Alibaba Cloud's 100.100.100.200 metadata
//! lives) ranges, not link-local (169.254.169.254, the usual cloud metadata address). That is where the
//! database, the S3 store and other openfc nodes live. An operator opens parts of those ranges with
//! `--outbound-allow` (a database a function must reach, say). The instance's own slirp network
//! (10.0.2.0/24: gateway, DNS forwarder) is more specific than the blackholes, so it keeps working; slirp's
//! path to the host's loopback is disabled separately.

use openfc_sandbox::Net;

/// Networks blackholed by default (IPv4: slirp4netns gives instances no IPv6).
pub const DEFAULT_BLOCKED: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // RFC 1918
    "100.64.0.0/10",   // RFC 6598 carrier-grade NAT; Alibaba Cloud metadata 100.100.100.200
    "169.254.0.0/16",  // link-local; cloud metadata 169.254.169.254
    "172.16.0.0/12",   // RFC 1918
    "192.0.0.0/24",    // IETF protocol assignments
    "192.168.0.0/16",  // RFC 1918
    "198.18.0.0/15",   // benchmarking
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, broadcast
];

/// The blackhole routes of an instance with outbound network: the default ranges and the host's own
/// addresses, minus what the operator allows.
pub fn blackholes(host_addresses: &[std::net::IpAddr], allow: &[Net]) -> Vec<Net> {
    let defaults = DEFAULT_BLOCKED.iter().map(|s| s.parse::<Net>().expect("static network"));
    let hosts = host_addresses.iter().filter_map(|a| Net::new(*a, if a.is_ipv4() { 32 } else { 128 }));
    let mut nets: Vec<Net> = defaults.chain(hosts).collect();
    for hole in allow {
        nets = nets.iter().flat_map(|n| n.without(hole)).collect();
    }
    nets.sort();
    nets.dedup();
    nets
}

/// Whether `addr` would be refused by these blackholes.
pub fn blocked(nets: &[Net], addr: std::net::IpAddr) -> bool {
    let host = Net::new(addr, if addr.is_ipv4() { 32 } else { 128 }).expect("full-length prefix");
    nets.iter().any(|n| n.contains(&host))
}

/// slirp4netns's DNS forwarder inside every instance with outbound network.
const SLIRP_DNS: &str = "10.0.2.3";

/// The generated files of an instance's `/etc`: users (root, nobody, and the instance's own uid), hosts,
/// hostname, and a resolver pointing at slirp's forwarder (the host's own resolver may sit on a blackholed
/// private address).
pub fn etc_files(hostname: &str, uid: u32, gid: u32, outbound: bool) -> Vec<(String, String)> {
    let mut passwd = String::from("root:x:0:0:root:/root:/usr/sbin/nologin\n");
    let mut group = String::from("root:x:0:\n");
    if uid != 0 && uid != 65_534 {
        passwd.push_str(&format!("fc:x:{uid}:{gid}:function:/tmp:/usr/sbin/nologin\n"));
        group.push_str(&format!("fc:x:{gid}:\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    group.push_str("nogroup:x:65534:\n");
    let resolv = if outbound { format!("nameserver {SLIRP_DNS}\n") } else { String::new() };
    vec![
        ("passwd".into(), passwd),
        ("group".into(), group),
        ("hostname".into(), format!("{hostname}\n")),
        ("hosts".into(), format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n")),
        ("resolv.conf".into(), resolv),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn metadata_private_ranges_and_host_are_blocked_by_default() {
        let nets = blackholes(&[ip("203.0.113.7")], &[]);
        for a in ["169.254.169.254", "100.100.100.200", "10.1.2.3", "172.20.0.1", "192.168.1.1", "203.0.113.7"] {
            assert!(blocked(&nets, ip(a)), "{a}");
        }
        for a in ["1.1.1.1", "8.8.8.8", "203.0.113.8"] {
            assert!(!blocked(&nets, ip(a)), "{a}");
        }
    }

    #[test]
    fn allow_opens_exactly_its_range() {
        let allow = ["10.20.0.0/16".parse().unwrap(), "169.254.169.254".parse().unwrap()];
        let nets = blackholes(&[], &allow);
        assert!(!blocked(&nets, ip("10.20.5.5")));
        assert!(!blocked(&nets, ip("169.254.169.254")));
        assert!(blocked(&nets, ip("10.21.0.1")));
        assert!(blocked(&nets, ip("169.254.169.253")));
        assert!(blocked(&nets, ip("100.100.100.200")));
    }

    #[test]
    fn etc_names_the_instance_and_its_user() {
        let files = etc_files("c-abc", 65_534, 65_534, true);
        let get = |n: &str| files.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        assert!(get("passwd").contains("nobody:x:65534:65534"));
        assert!(get("hosts").contains("c-abc"));
        assert_eq!(get("resolv.conf"), "nameserver 10.0.2.3\n");
        assert_eq!(etc_files("h", 1000, 1000, false).iter().find(|(k, _)| k == "resolv.conf").unwrap().1, "");
    }
}
