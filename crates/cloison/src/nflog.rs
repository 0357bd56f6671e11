//! The edge that reads the ruleset's sampled drops: a subscription to cloison's NFLOG
//! group over netlink, yielding `Sample`s (the pure decoding is
//! `cloison_core::sample::decode`).

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
    pending: Vec<Sample>,
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
            pending: Vec::new(),
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
        let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut offset = 0;
        while offset < n {
            let Ok(msg) = NetlinkMessage::<NetfilterMessage>::deserialize(&self.buf[offset..n])
            else {
                break;
            };
            let len = msg.header.length as usize;
            if let NetlinkPayload::InnerMessage(NetfilterMessage {
                inner: NetfilterMessageInner::ULog(ULogMessage::Packet(nlas)),
                ..
            }) = &msg.payload
            {
                self.pending.push(sample(nlas));
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
        Ok(std::mem::take(&mut self.pending))
    }
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
