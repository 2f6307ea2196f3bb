//! The PROXY protocol header (v1 text, v2 binary) that a load balancer
//! sends before the client's bytes (README, "PROXY protocol and client
//! addresses").
//!
//! Exactly the header's bytes are read, so the request that follows is
//! served from the bare stream as without the header.

use std::net::SocketAddr;
use std::time::Duration;

use ppp::v2::{Addresses as V2Addresses, Command};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::config::ServerConfig;

/// The longest v1 header, CRLF included.
const V1_MAX: usize = 107;
/// The 12-byte v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, version/command, family,
/// length.
const V2_FIXED: usize = 16;

/// The client address of a new connection from `peer`: `peer` itself when
/// `proxy_protocol` is off; else the address of the PROXY header, read
/// within `request_header_timeout`. `None` when the connection must be
/// closed: the peer is not in a non-empty `trusted_proxies`, or the header
/// is missing, invalid, or late.
pub async fn client_address(
    stream: &mut TcpStream,
    peer: SocketAddr,
    server: &ServerConfig,
) -> Option<SocketAddr> {
    if !server.proxy_protocol {
        return Some(peer);
    }
    if !server.trusted_proxies.is_empty()
        && !crate::proxy::is_trusted(&server.trusted_proxies, peer.ip())
    {
        tracing::debug!(peer = %peer, "PROXY protocol: peer not in trusted_proxies, closed");
        return None;
    }
    match read_header(stream, peer, server.request_header_timeout).await {
        Ok(client) => Some(client),
        Err(why) => {
            tracing::debug!(peer = %peer, error = %why, "PROXY protocol: no valid header, closed");
            None
        }
    }
}

/// Reads one v1 or v2 header within `timeout`.
async fn read_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    tokio::time::timeout(timeout, async {
        // Five bytes tell the versions apart ("PROXY" or "\r\n\r\n\0") and
        // are shorter than either header.
        let mut head = [0u8; 5];
        stream
            .read_exact(&mut head)
            .await
            .map_err(|e| e.to_string())?;
        if &head == b"PROXY" {
            read_v1(stream, head, peer).await
        } else if head == V2_SIGNATURE[..5] {
            read_v2(stream, head, peer).await
        } else {
            Err("the connection does not start with a PROXY header".into())
        }
    })
    .await
    .map_err(|_| "timed out".to_string())?
}

/// The rest of a v1 line, up to and including its CRLF: what is waiting is
/// peeked, and only the bytes up to the line end are consumed.
async fn read_v1(
    stream: &mut TcpStream,
    head: [u8; 5],
    peer: SocketAddr,
) -> Result<SocketAddr, String> {
    let mut line = [0u8; V1_MAX];
    line[..head.len()].copy_from_slice(&head);
    let mut len = head.len();
    loop {
        let n = stream
            .peek(&mut line[len..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed inside the header".into());
        }
        let take = match line[len..len + n].iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => n,
        };
        stream
            .read_exact(&mut line[len..len + take])
            .await
            .map_err(|e| e.to_string())?;
        len += take;
        if line[len - 1] == b'\n' {
            break;
        }
        if len == V1_MAX {
            return Err("v1 header longer than 107 bytes".into());
        }
    }
    let header = ppp::v1::Header::try_from(&line[..len]).map_err(|e| format!("v1: {e}"))?;
    if header.header.len() != len {
        return Err("v1: stray carriage return".into());
    }
    Ok(match header.addresses {
        ppp::v1::Addresses::Tcp4(a) => SocketAddr::from((a.source_address, a.source_port)),
        ppp::v1::Addresses::Tcp6(a) => SocketAddr::from((a.source_address, a.source_port)),
        ppp::v1::Addresses::Unknown => peer,
    })
}

/// The rest of a v2 header: the fixed part, then the length it announces.
async fn read_v2(
    stream: &mut TcpStream,
    head: [u8; 5],
    peer: SocketAddr,
) -> Result<SocketAddr, String> {
    let mut fixed = [0u8; V2_FIXED];
    fixed[..head.len()].copy_from_slice(&head);
    stream
        .read_exact(&mut fixed[head.len()..])
        .await
        .map_err(|e| e.to_string())?;
    if &fixed[..V2_SIGNATURE.len()] != V2_SIGNATURE {
        return Err("v2: bad signature".into());
    }
    let rest = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let mut whole = Vec::with_capacity(V2_FIXED + rest);
    whole.extend_from_slice(&fixed);
    whole.resize(V2_FIXED + rest, 0);
    stream
        .read_exact(&mut whole[V2_FIXED..])
        .await
        .map_err(|e| e.to_string())?;
    let header = ppp::v2::Header::try_from(&whole[..]).map_err(|e| format!("v2: {e}"))?;
    Ok(v2_client(&header, peer))
}

/// LOCAL (the balancer's own health check) and address families without an
/// IP (UNSPEC, UNIX) keep the peer address.
fn v2_client(header: &ppp::v2::Header<'_>, peer: SocketAddr) -> SocketAddr {
    if header.command == Command::Local {
        return peer;
    }
    match header.addresses {
        V2Addresses::IPv4(a) => SocketAddr::from((a.source_address, a.source_port)),
        V2Addresses::IPv6(a) => SocketAddr::from((a.source_address, a.source_port)),
        V2Addresses::Unspecified | V2Addresses::Unix(_) => peer,
    }
}
