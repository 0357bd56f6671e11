//! Names of well-known ports, so a person reading an alert knows what was tried
//! (`tcp/445 (SMB)`). Only names a town hall's IT contractor would recognise.

use super::event::L4;

/// The service usually behind `port` for `proto`, if it is one worth naming.
pub fn service_name(proto: L4, port: u16) -> Option<&'static str> {
    let tcp = matches!(proto, L4::Tcp);
    let udp = matches!(proto, L4::Udp);
    if !tcp && !udp {
        return None;
    }
    Some(match port {
        20 | 21 if tcp => "FTP",
        22 if tcp => "SSH",
        23 if tcp => "Telnet",
        25 | 465 | 587 if tcp => "SMTP",
        53 => "DNS",
        67 | 68 if udp => "DHCP",
        69 if udp => "TFTP",
        80 => "HTTP",
        88 => "Kerberos",
        110 | 995 if tcp => "POP3",
        123 if udp => "NTP",
        135 => "MS-RPC",
        137..=139 => "NetBIOS",
        143 | 993 if tcp => "IMAP",
        161 | 162 if udp => "SNMP",
        389 => "LDAP",
        443 => "HTTPS",
        445 if tcp => "SMB",
        500 | 4500 if udp => "IPsec",
        514 if udp => "syslog",
        515 if tcp => "LPD printing",
        546 | 547 if udp => "DHCPv6",
        631 => "IPP printing",
        636 if tcp => "LDAPS",
        853 => "DNS over TLS",
        1194 => "OpenVPN",
        1433 if tcp => "SQL Server",
        1900 if udp => "SSDP",
        3306 if tcp => "MySQL",
        3389 => "RDP",
        5353 if udp => "mDNS",
        5355 => "LLMNR",
        5432 if tcp => "PostgreSQL",
        5900..=5903 if tcp => "VNC",
        5985 | 5986 if tcp => "WinRM",
        8080 if tcp => "HTTP proxy",
        8443 if tcp => "HTTPS alt",
        9100 if tcp => "printer",
        51820 if udp => "WireGuard",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_depend_on_protocol() {
        assert_eq!(service_name(L4::Tcp, 445), Some("SMB"));
        assert_eq!(service_name(L4::Udp, 445), None);
        assert_eq!(service_name(L4::Udp, 53), Some("DNS"));
        assert_eq!(service_name(L4::Tcp, 53), Some("DNS"));
        assert_eq!(service_name(L4::Udp, 67), Some("DHCP"));
        assert_eq!(service_name(L4::Udp, 138), Some("NetBIOS"));
        assert_eq!(service_name(L4::Tcp, 3389), Some("RDP"));
        assert_eq!(service_name(L4::Icmp, 22), None);
        assert_eq!(service_name(L4::Tcp, 40000), None);
    }
}
