//! Bad input gives clear errors: unparsable addresses, refused connections,
//! addresses in use and missing Unix socket files all come back as
//! `io::Error`s of the right kind whose message names the address and cause.

use std::io::ErrorKind;

use threadlet::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

#[test]
fn unparsable_address_is_invalid_input_with_a_hint() {
    threadlet::run(|| {
        let err = TcpStream::connect("not an address").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let msg = err.to_string();
        assert!(msg.contains("TcpStream::connect"), "{msg}");
        assert!(
            msg.contains("host:port"),
            "message should say what is expected: {msg}"
        );
        let err = TcpListener::bind("127.0.0.1").unwrap_err();
        assert!(err.to_string().contains("TcpListener::bind"), "{err}");
    });
}

#[test]
fn refused_connection_names_the_address() {
    threadlet::run(|| {
        // A port nobody listens on: bind, note the port, close.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&addr.to_string()),
            "message should name {addr}: {msg}"
        );
        assert!(
            msg.contains("listening"),
            "message should hint at the cause: {msg}"
        );
    });
}

#[test]
fn refused_connection_on_a_plain_thread_too() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn address_in_use_names_the_address_and_the_fix() {
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = first.local_addr().unwrap();
    let err = TcpListener::bind(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&addr.to_string()) && msg.contains("port 0"),
        "{msg}"
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = UdpSocket::bind(udp.local_addr().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
}

#[test]
fn missing_unix_socket_file_names_the_path() {
    let path =
        std::env::temp_dir().join(format!("threadlet-no-such-socket-{}", std::process::id()));
    let err = UnixStream::connect(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("server"), "{msg}");
}
