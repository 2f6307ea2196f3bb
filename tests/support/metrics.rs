//! Reading a gateway's `/metrics`.

use std::net::SocketAddr;
use std::str::FromStr;

/// The exposition of the admin listener at `admin`.
pub async fn scrape(admin: SocketAddr) -> String {
    let r = super::get(admin, "/metrics", None).await;
    assert_eq!(r.status, 200, "GET /metrics");
    String::from_utf8(r.body.to_vec()).expect("the exposition is UTF-8")
}

/// The value of the series `name` (the full name and labels, as written),
/// if the exposition has it.
pub fn series<T: FromStr>(text: &str, name: &str) -> Option<T> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
