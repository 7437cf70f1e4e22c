//! `UdpSocket`: std's API, fiber-blocking behaviour. Sends and receives go
//! through std's own calls on the (nonblocking) fd, wrapped in the wait loop;
//! std sends with `MSG_NOSIGNAL`.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::Duration;

use super::source::{fd_traits, Socket};
use super::{annotate, resolve};
use crate::park::WaitReason;
use crate::reactor::Direction;

const RECV: WaitReason = WaitReason::UdpRecv;
const SEND: WaitReason = WaitReason::UdpSend;

/// A UDP socket, like [`std::net::UdpSocket`]; receives (and sends into a
/// full buffer) park the calling fiber instead of blocking its thread.
///
/// ```
/// use threadlet::net::UdpSocket;
///
/// threadlet::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    sock: Socket,
}

type Std = std::net::UdpSocket;

impl UdpSocket {
    /// Creates a socket bound to `addr` (each resolved address is tried).
    ///
    /// # Errors
    /// An unresolvable address, or the bind failing for every address.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let mut last = None;
        for addr in resolve(addr, "UdpSocket::bind")? {
            match mio::net::UdpSocket::bind(addr) {
                Ok(s) => {
                    return Ok(UdpSocket {
                        sock: Socket::from_nonblocking(OwnedFd::from(s)),
                    })
                }
                Err(e) => {
                    last = Some(annotate(
                        e,
                        format_args!("cannot bind a UDP socket to {addr}"),
                    ))
                }
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Receives one datagram and its sender, parking until one arrives.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let std = self.sock.as_std::<Std>();
        self.sock.io(Direction::Read, RECV, || std.recv_from(buf))
    }

    /// Like `recv_from` but leaves the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let std = self.sock.as_std::<Std>();
        self.sock.io(Direction::Read, RECV, || std.peek_from(buf))
    }

    /// Sends `buf` to `addr` (the first resolved address, as std does).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = resolve(addr, "UdpSocket::send_to")?[0];
        let std = self.sock.as_std::<Std>();
        self.sock
            .io(Direction::Write, SEND, || std.send_to(buf, addr))
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.as_std::<Std>().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.as_std::<Std>().local_addr()
    }

    /// A second handle (new fd, shared registration and options).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: self.sock.try_clone()?,
        })
    }

    /// Read timeout (`TimedOut` when it expires). `Some(ZERO)` is `InvalidInput`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, dur)
    }

    /// Write timeout (`TimedOut` when it expires).
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Write, dur)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Read))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Write))
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock.as_std::<Std>().set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.as_std::<Std>().broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.sock.as_std::<Std>().set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.sock.as_std::<Std>().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.sock.as_std::<Std>().set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.sock.as_std::<Std>().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.sock.as_std::<Std>().set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.sock.as_std::<Std>().multicast_loop_v6()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.as_std::<Std>().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.as_std::<Std>().ttl()
    }

    /// Joins an IPv4 multicast group.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock
            .as_std::<Std>()
            .join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock
            .as_std::<Std>()
            .join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock
            .as_std::<Std>()
            .leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock
            .as_std::<Std>()
            .leave_multicast_v6(multiaddr, interface)
    }

    /// Takes the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.as_std::<Std>().take_error()
    }

    /// Sets the default peer (each resolved address is tried, as std does).
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let std = self.sock.as_std::<Std>();
        let mut last = None;
        for addr in resolve(addr, "UdpSocket::connect")? {
            match std.connect(addr) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Some(annotate(
                        e,
                        format_args!("cannot connect a UDP socket to {addr}"),
                    ))
                }
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let std = self.sock.as_std::<Std>();
        self.sock.io(Direction::Write, SEND, || std.send(buf))
    }

    /// Receives from the connected peer, parking until a datagram arrives.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let std = self.sock.as_std::<Std>();
        self.sock.io(Direction::Read, RECV, || std.recv(buf))
    }

    /// Like `recv` but leaves the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let std = self.sock.as_std::<Std>();
        self.sock.io(Direction::Read, RECV, || std.peek(buf))
    }

    /// Emulated nonblocking mode: while on, calls that cannot proceed return
    /// `WouldBlock` instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

fd_traits!(UdpSocket, std::net::UdpSocket);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}
