//! What the admin API shows about a certificate: its subject's common name
//! and its expiry (notAfter), read with a small DER walk over the fields
//! that precede them in `TBSCertificate`.

/// The parts of a certificate worth showing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertSummary {
    /// The subject's common name (CN), if it has one.
    pub subject: Option<String>,
    /// notAfter as `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_after: Option<String>,
}

/// Reads the subject CN and notAfter of a DER certificate; fields that
/// cannot be read are `None`.
pub fn summarize(der: &[u8]) -> CertSummary {
    walk(der).unwrap_or_default()
}

fn walk(der: &[u8]) -> Option<CertSummary> {
    let (_, cert, _) = tlv(der, 0x30)?;
    let (_, mut tbs, _) = tlv(cert, 0x30)?;
    // [0] EXPLICIT version, optional.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs, 0xa0)?.2;
    }
    let rest = tlv(tbs, 0x02)?.2; // serialNumber
    let rest = tlv(rest, 0x30)?.2; // signature algorithm
    let rest = tlv(rest, 0x30)?.2; // issuer
    let (_, validity, rest) = tlv(rest, 0x30)?;
    let (_, subject, _) = tlv(rest, 0x30)?;
    let not_after = {
        let (_, _, after_not_before) = any_tlv(validity)?;
        let (tag, time, _) = any_tlv(after_not_before)?;
        time_of(tag, time)
    };
    Some(CertSummary {
        subject: common_name(subject),
        not_after,
    })
}

/// The first CN attribute of an X.501 Name (a SEQUENCE of SETs of
/// SEQUENCE { OID, value }).
fn common_name(mut name: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    while !name.is_empty() {
        let (_, mut set, rest) = tlv(name, 0x31)?;
        name = rest;
        while !set.is_empty() {
            let (_, attr, rest) = tlv(set, 0x30)?;
            set = rest;
            let (_, oid, value) = tlv(attr, 0x06)?;
            if oid == CN {
                let (_, text, _) = any_tlv(value)?;
                return Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    None
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time_of(tag: u8, t: &[u8]) -> Option<String> {
    let t = std::str::from_utf8(t).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: u32 = t.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, t.get(2..)?)
        }
        0x18 => (t.get(..4)?.parse().ok()?, t.get(4..)?),
        _ => return None,
    };
    let b = rest.as_bytes();
    if b.len() < 11 || b[10] != b'Z' || !b[..10].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        &rest[0..2],
        &rest[2..4],
        &rest[4..6],
        &rest[6..8],
        &rest[8..10]
    ))
}

/// One TLV with tag `want`: (tag, contents, what follows).
fn tlv(input: &[u8], want: u8) -> Option<(u8, &[u8], &[u8])> {
    any_tlv(input).filter(|(tag, _, _)| *tag == want)
}

/// One TLV of any (single-byte) tag, definite length.
fn any_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_common_name_and_not_after_of_a_real_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gateway.example");
        params.not_after = rcgen::date_time_ymd(2031, 7, 9);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let s = summarize(cert.der());
        assert_eq!(s.subject.as_deref(), Some("gateway.example"));
        assert_eq!(s.not_after.as_deref(), Some("2031-07-09T00:00:00Z"));

        params.not_after = rcgen::date_time_ymd(2051, 1, 2); // GeneralizedTime
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            summarize(cert.der()).not_after.as_deref(),
            Some("2051-01-02T00:00:00Z")
        );
    }

    #[test]
    fn garbage_gives_nothing_and_does_not_panic() {
        assert_eq!(summarize(b""), CertSummary::default());
        assert_eq!(summarize(&[0x30, 0x84, 0xff, 0xff]), CertSummary::default());
        assert_eq!(summarize(&[0x30, 0x03, 0x30, 0x01]), CertSummary::default());
    }
}
