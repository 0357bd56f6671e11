//! The edge that reads the ruleset's sampled drops: a subscription to cloison's NFLOG
//! group over netlink, yielding `Sample`s. The socket is `Reader`'s; reading a datagram
//! into samples is the pure `decode_datagram` (fuzzed), and what a sample means is
//! `cloison_core::sample::decode`.

use std::ffi::CString;
use std::io;
use std::time::Duration;

use cloison_core::names::NFLOG_GROUP;
use cloison_core::sample::{COPY_RANGE, Sample, headers_only};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, Nla};
use netlink_packet_netfilter::nflog::{
    ConfigCmd, ConfigMode, ConfigNla, PacketNla, ULogMessage, config_request,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{Socket, constants::NETLINK_NETFILTER};

/// A subscription to cloison's NFLOG group.
pub struct Reader {
    socket: Socket,
    buf: Vec<u8>,
}

impl Reader {
    /// Binds the group; `poll` waits at most `timeout` for samples, so the caller can
    /// check for shutdown.
    pub fn open(timeout: Duration) -> io::Result<Reader> {
        let reader = Reader::bind()?;
        set_recv_timeout(&reader.socket, timeout)?;
        Ok(reader)
    }

    /// Binds the group with a non-blocking socket, for an event loop: `poll` returns
    /// what is queued, possibly nothing, at once.
    pub fn open_nonblocking() -> io::Result<Reader> {
        let reader = Reader::bind()?;
        reader.socket.set_non_blocking(true)?;
        Ok(reader)
    }

    fn bind() -> io::Result<Reader> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.set_rx_buf_sz(1 << 20)?;
        let mut reader = Reader {
            socket,
            buf: vec![0; 1 << 16],
        };
        let group = u16::try_from(NFLOG_GROUP).expect("NFLOG groups are 16-bit");
        reader.configure(NetfilterProtoFamily::Unspec, group, ConfigCmd::Bind)?;
        reader.configure_mode(group)?;
        Ok(reader)
    }

    fn send(&mut self, msg: NetlinkMessage<NetfilterMessage>) -> io::Result<()> {
        let mut buf = vec![0; msg.header.length as usize];
        msg.serialize(&mut buf[..]);
        self.socket.send(&buf, 0)?;
        Ok(())
    }

    fn configure(
        &mut self,
        family: NetfilterProtoFamily,
        group: u16,
        cmd: ConfigCmd,
    ) -> io::Result<()> {
        self.send(config_request(family, group, vec![cmd.into()]))?;
        self.expect_ack()
    }

    fn configure_mode(&mut self, group: u16) -> io::Result<()> {
        // The kernel's default is to batch up to 100 packets or one second; samples are
        // already rate-limited by the ruleset, and a first alert must be prompt.
        self.send(config_request(
            NetfilterProtoFamily::Unspec,
            group,
            vec![
                ConfigMode::new_packet(COPY_RANGE).into(),
                ConfigNla::QThresh(1),
            ],
        ))?;
        self.expect_ack()
    }

    fn expect_ack(&mut self) -> io::Result<()> {
        let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
        let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&self.buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        match msg.payload {
            NetlinkPayload::Error(e) => match e.code {
                None => Ok(()),
                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
            },
            _ => Ok(()),
        }
    }

    /// The next samples, or an empty list after the timeout.
    pub fn poll(&mut self) -> io::Result<Vec<Sample>> {
        Ok(self
            .recv_datagram()?
            .map(decode_datagram)
            .unwrap_or_default())
    }

    /// The next datagram as `recv(2)` returned it, or `None` after the timeout.
    pub fn recv_datagram(&mut self) -> io::Result<Option<&[u8]>> {
        match self.socket.recv(&mut &mut self.buf[..], 0) {
            Ok(n) => Ok(Some(&self.buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// The samples in one datagram of the NFLOG group: netlink messages one after the
/// other, each an NFULNL_MSG_PACKET or something ignored. Pure, and fuzzed: the bytes
/// come from the kernel, but what they describe was sent by anyone.
pub fn decode_datagram(datagram: &[u8]) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut offset = 0;
    while offset < datagram.len() {
        let Ok(msg) = NetlinkMessage::<NetfilterMessage>::deserialize(&datagram[offset..]) else {
            break;
        };
        let len = msg.header.length as usize;
        if let NetlinkPayload::InnerMessage(NetfilterMessage {
            inner: NetfilterMessageInner::ULog(ULogMessage::Packet(nlas)),
            ..
        }) = &msg.payload
        {
            samples.push(sample(nlas));
        }
        if len == 0 {
            break;
        }
        offset += len;
    }
    samples
}

impl std::os::fd::AsRawFd for Reader {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

fn sample(nlas: &[PacketNla]) -> Sample {
    let mut s = Sample::default();
    for nla in nlas {
        match nla {
            PacketNla::Prefix(p) => s.prefix = prefix(p),
            PacketNla::IfIndexInDev(i) => s.ifindex_in = Some(*i),
            PacketNla::Mark(m) => s.mark = Some(*m),
            PacketNla::HwAddr(hw) => {
                // The crate keeps the fields private; its wire form is
                // length (u16, big endian), 2 bytes of padding, 8 address bytes.
                let mut raw = [0u8; 12];
                hw.emit_value(&mut raw);
                if u16::from_be_bytes([raw[0], raw[1]]) >= 6 {
                    s.src_mac = Some([raw[4], raw[5], raw[6], raw[7], raw[8], raw[9]]);
                }
            }
            PacketNla::Payload(p) => s.packet = headers_only(p).to_vec(),
            _ => {}
        }
    }
    s
}

fn prefix(p: &CString) -> String {
    p.to_string_lossy().into_owned()
}

fn set_recv_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    crate::sockopt::set_recv_timeout(socket.as_raw_fd(), timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from the kernel (nflog/fixtures/README.md says how and what).
    const UDP4_DNS: &[u8] = include_bytes!("nflog/fixtures/001.bin");
    const UDP4_OPTIONS: &[u8] = include_bytes!("nflog/fixtures/007.bin");
    const UDP6_DNS: &[u8] = include_bytes!("nflog/fixtures/005.bin");

    #[test]
    fn a_recorded_datagram_is_one_sample_with_its_headers() {
        let samples = decode_datagram(UDP4_DNS);
        assert_eq!(samples.len(), 1);
        let s = &samples[0];
        assert_eq!(s.prefix, "kiosk/mairie");
        assert_eq!(s.ifindex_in, Some(2));
        assert!(s.src_mac.is_some());
        assert_eq!(s.packet.len(), 20 + 8, "the IPv4 header and the UDP header");
        assert_eq!(&s.packet[12..20], &[192, 168, 20, 15, 192, 168, 10, 5]);
        // Recorded with a copy range of 64 bytes (the fixtures' README): the kernel cut
        // this one inside the UDP header, and that is all there is to keep.
        assert_eq!(decode_datagram(UDP4_OPTIONS)[0].packet.len(), 64);
        assert_eq!(decode_datagram(UDP6_DNS)[0].packet.len(), 40 + 8);
    }

    #[test]
    fn datagrams_of_several_messages_and_cut_ones() {
        let mut two = UDP4_DNS.to_vec();
        two.extend_from_slice(UDP6_DNS);
        let samples = decode_datagram(&two);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[1].packet.len(), 40 + 8);
        // A message cut short is not read; those before it are.
        let cut = &two[..two.len() - 10];
        assert_eq!(decode_datagram(cut).len(), 1);
        assert!(decode_datagram(&UDP4_DNS[..15]).is_empty());
        assert!(decode_datagram(&[]).is_empty());
    }
}
