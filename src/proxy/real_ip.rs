//! Which address is the client: trusted peers, and the client address the
//! access log records (README, "PROXY protocol and client addresses").

use std::net::IpAddr;

use http::HeaderMap;
use http::header::HeaderValue;
use ipnet::IpNet;

use crate::common::X_FORWARDED_FOR;

/// Whether `ip` is in one of the `trusted` networks. An IPv4-mapped IPv6
/// address (`::ffff:10.0.0.1`, from a dual-stack listener) is read as the
/// IPv4 address it carries.
pub fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client address for logs: `peer` itself, unless `peer` is trusted and
/// the request carries `X-Forwarded-For`; then the rightmost address there
/// that is not trusted (nginx's `real_ip_recursive on`). When every address
/// is trusted, the leftmost one; an entry that is not an IP address ends
/// the walk at the last address read before it.
pub fn client_for_log(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let values: Vec<&HeaderValue> = headers.get_all(&X_FORWARDED_FOR).iter().collect();
    let mut client = peer;
    // Right to left: the last header field, then its last entry, first.
    for value in values.into_iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Some(ip) = parse_entry(entry) else {
                return client;
            };
            if !is_trusted(trusted, ip) {
                return ip;
            }
            client = ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an IP, possibly `[v6]` or with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip())
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(&X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = xff(&["198.51.100.1"]);
        assert_eq!(
            client_for_log(ip("192.0.2.9"), &h, &trusted),
            ip("192.0.2.9")
        );
        assert_eq!(client_for_log(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.168.0.0/16"]);
        // A client-forged first entry, the real client, then two proxies.
        let h = xff(&["1.2.3.4, 198.51.100.7, 192.168.1.1", "10.1.1.1"]);
        assert_eq!(
            client_for_log(ip("10.0.0.2"), &h, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn every_address_trusted_gives_the_leftmost() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = xff(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(client_for_log(ip("10.0.0.2"), &h, &trusted), ip("10.9.9.9"));
    }

    #[test]
    fn no_header_or_garbage_stops_at_the_last_trusted_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_for_log(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        let h = xff(&["198.51.100.7, unknown, 10.1.1.1"]);
        assert_eq!(client_for_log(ip("10.0.0.2"), &h, &trusted), ip("10.1.1.1"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let h = xff(&["[2001:db8::1]:443, 198.51.100.7:5000, fd00::1"]);
        assert_eq!(
            client_for_log(ip("::ffff:10.0.0.2"), &h, &trusted),
            ip("198.51.100.7")
        );
        let h = xff(&["[2001:db8::1]"]);
        assert_eq!(
            client_for_log(ip("10.0.0.2"), &h, &trusted),
            ip("2001:db8::1")
        );
        assert!(is_trusted(&trusted, ip("::ffff:10.0.0.2")));
        assert!(!is_trusted(&trusted, ip("::ffff:11.0.0.2")));
    }
}
