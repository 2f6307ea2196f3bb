use std::path::Path;

use super::*;

/// A self-signed certificate for `cn` and its key, as PEM.
fn pair(cn: &str) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn files(dir: &Path) -> TlsConfig {
    let file = |name: &str, key: &'static str| TlsFile {
        path: dir.join(name),
        key,
        config_file: dir.join("permgate.toml"),
        position: Some((4, 1)),
    };
    TlsConfig {
        cert: file("server.crt", "server.tls_cert"),
        key: file("server.key", "server.tls_key"),
        client_ca: None,
    }
}

fn write(dir: &Path, (cert, key): &(String, String)) {
    std::fs::write(dir.join("server.crt"), cert).unwrap();
    std::fs::write(dir.join("server.key"), key).unwrap();
}

#[test]
fn problems_name_the_config_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path());
    let e = TlsState::load(&f).err().unwrap();
    assert_eq!(e.line(), Some(4));
    assert!(e.message.contains("server.tls_cert"), "{e}");
    assert!(e.message.contains("cannot read"), "{e}");

    let (cert, _) = pair("a");
    let (_, other_key) = pair("b");
    write(dir.path(), &(cert.clone(), other_key));
    let e = TlsState::load(&f).err().unwrap();
    assert!(e.message.contains("server.tls_key"), "{e}");
    assert!(e.message.contains("does not fit the certificate"), "{e}");

    write(
        dir.path(),
        &(cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n".into()),
    );
    assert!(TlsState::load(&f).is_err());
}

#[test]
fn a_reload_swaps_a_good_pair_and_keeps_the_last_good_one_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path());
    write(dir.path(), &pair("first"));
    let state = TlsState::load(&f).unwrap();
    let subject = |s: &TlsState| s.status(|_| String::new())["certificate"]["subject"].clone();
    assert_eq!(subject(&state), "first");
    let before = state.server_config();
    assert!(!state.reload().unwrap(), "unchanged files: nothing to do");
    assert!(Arc::ptr_eq(&before, &state.server_config()));

    let (cert, _) = pair("second");
    let (_, wrong_key) = pair("third");
    write(dir.path(), &(cert, wrong_key));
    assert!(state.reload().is_err());
    assert!(
        Arc::ptr_eq(&before, &state.server_config()),
        "last good kept"
    );
    let status = state.status(|_| String::new());
    assert_eq!(status["certificate"]["subject"], "first");
    let message = status["lastError"]["message"].as_str().unwrap();
    assert!(message.contains("does not fit"), "{message}");

    write(dir.path(), &pair("fourth"));
    assert!(state.reload().unwrap());
    assert!(!Arc::ptr_eq(&before, &state.server_config()));
    assert_eq!(subject(&state), "fourth");
    assert!(state.status(|_| String::new())["lastError"].is_null());
}

#[test]
fn offers_h2_then_http1_with_resumption() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &pair("x"));
    let state = TlsState::load(&files(dir.path())).unwrap();
    let config = state.server_config();
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(config.ticketer.enabled(), "session tickets on");
    assert!(!state.mtls());
}
