//! The simulated mairie: network namespaces and veth pairs on one machine.
//! (Being written; see issue 3.)

pub mod journal;

/// Arguments of the hidden `cloison lab serve` command.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TCP ports to listen on.
    #[arg(long, value_delimiter = ',')]
    pub tcp: Vec<u16>,
    /// UDP ports to answer on.
    #[arg(long, value_delimiter = ',')]
    pub udp: Vec<u16>,
}

pub fn serve(_args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("lab serve is not written yet")
}
