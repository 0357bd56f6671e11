//! `cloison verify`, the edge: proof with real packets through the live interfaces and
//! rules. For each segment a probe host is attached (`host`), at an address found free
//! (`address`); the probes the configuration calls for (`cloison_core::verify`) are sent
//! from them (`send`) while nftables tracing reports each probe's verdict
//! (`kernel::nfnetlink::trace`), then the routing is asked what the second wall does
//! with each (`route`). Everything attached is removed afterwards, on error and
//! interruption too; a run killed outright is cleaned up by the next (`leftovers`).

pub mod address;
pub mod host;
pub mod leftovers;
pub mod route;
pub mod send;
pub mod trace_rule;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cloison_core::config::Config;
use cloison_core::names::TABLE;
use cloison_core::policy::L4;
use cloison_core::verify::judge::{self, Judgement, Observation, RulesetVerdict};
use cloison_core::verify::result::VerifyResult;
use cloison_core::verify::{Probe, ProbeHost, probes};
use rtnetlink::Handle;

use crate::kernel::nfnetlink::trace::{Flow, TraceEvent, Tracer};
use host::Attached;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Segment(String),
    #[error("cannot make the probe host: {0}")]
    Namespace(String),
    #[error("{op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error(transparent)]
    Bpf(crate::kernel::bpf::BpfError),
    #[error(transparent)]
    Tc(crate::kernel::tc::TcError),
    #[error("cannot observe the ruleset (nftables tracing)")]
    Trace(#[source] crate::kernel::nfnetlink::Error),
    #[error(
        "cannot add or remove the trace table `inet {}`",
        trace_rule::TRACE_TABLE
    )]
    TraceTable(#[source] crate::kernel::nft::NftError),
    #[error("cannot take the verify lock {path}: {detail}")]
    Lock { path: PathBuf, detail: String },
    #[error("another `cloison verify` is running (pid {0}); wait for it to finish")]
    Busy(String),
    #[error("interrupted; everything the run attached was removed")]
    Interrupted,
    #[error("cannot open a netlink connection")]
    Connect(#[source] std::io::Error),
}

impl VerifyError {
    pub fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> VerifyError {
        VerifyError::Netlink {
            op: op.into(),
            source,
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub hosts: Vec<ProbeHost>,
    pub judged: Vec<Judgement>,
    pub result: VerifyResult,
    pub started: SystemTime,
    pub took: Duration,
    /// What a killed run had left and this one removed.
    pub cleaned: Vec<String>,
    /// What this run could not remove of its own (said loudly: it should be empty).
    pub left: Vec<String>,
}

impl Outcome {
    pub fn failures(&self) -> usize {
        self.judged.iter().filter(|j| !j.as_expected).count()
    }

    pub fn passed(&self) -> bool {
        self.failures() == 0
    }
}

/// How long traces may trail behind the last probe's answer.
const TRACE_GRACE: Duration = Duration::from_millis(300);

/// Runs the verification of `config` on this box (in the calling thread's network
/// namespace); `interrupted` resolves on Ctrl-C or SIGTERM, after which everything is
/// removed and `Interrupted` returned. Needs a tokio runtime.
pub async fn run(
    config: &Config,
    runtime_dir: &std::path::Path,
    interrupted: impl Future<Output = ()>,
) -> Result<Outcome, VerifyError> {
    let lock = leftovers::Lock::take(runtime_dir)?;
    let (conn, h, _) = rtnetlink::new_connection().map_err(VerifyError::Connect)?;
    tokio::spawn(conn);
    let nft = crate::kernel::nft::Nft::default();
    let cleaned = leftovers::clean(&h, &lock).await?;
    let started = SystemTime::now();
    let t0 = Instant::now();
    let mut attached: Vec<Attached> = Vec::new();
    let work = async {
        trace_rule::install(&nft).map_err(VerifyError::TraceTable)?;
        probe_all(config, &h, &lock, &mut attached).await
    };
    let result = tokio::select! {
        r = work => r,
        () = interrupted => Err(VerifyError::Interrupted),
    };
    let interrupted = matches!(result, Err(VerifyError::Interrupted));
    let mut left = Vec::new();
    for a in attached.iter_mut().rev() {
        left.extend(a.detach_now(&h, !interrupted).await);
    }
    if left.is_empty() {
        lock.forget_qdiscs();
    }
    if let Err(e) = trace_rule::remove(&nft) {
        left.push(format!(
            "the trace table inet {}: {}",
            trace_rule::TRACE_TABLE,
            crate::status::error_text(&e)
        ));
    }
    let (hosts, judged) = result?;
    let result = judge::summarize(&judged);
    Ok(Outcome {
        hosts,
        judged,
        result,
        started,
        took: t0.elapsed(),
        cleaned,
        left,
    })
}

/// The probes a run would send, without sending anything: probe addresses are those
/// configured, or a stand-in (`.254`, the first candidate) marked as such.
pub fn dry_run(config: &Config) -> (Vec<ProbeHost>, Vec<Probe>) {
    let hosts: Vec<ProbeHost> = config
        .segments
        .iter()
        .map(|s| {
            let net = s.address.subnet();
            let v4 = config
                .verify
                .probe_addresses
                .get(&s.name)
                .copied()
                .unwrap_or_else(|| std::net::Ipv4Addr::from(u32::from(net.broadcast()) - 1));
            ProbeHost {
                segment: s.name.clone(),
                v4,
                v6: s.address6.map(|a| {
                    std::net::Ipv6Addr::from(
                        u128::from(a.subnet().network()) | 0xc105_0000_0000_0001,
                    )
                }),
            }
        })
        .collect();
    let list = probes(config, &hosts);
    (hosts, list)
}

async fn probe_all(
    config: &Config,
    h: &Handle,
    lock: &leftovers::Lock,
    attached: &mut Vec<Attached>,
) -> Result<(Vec<ProbeHost>, Vec<Judgement>), VerifyError> {
    // Attach a probe host to each segment.
    for (i, s) in config.segments.iter().enumerate() {
        let (ifindex, seg_mac, _) = host::link(h, s.interface.as_str())
            .await?
            .ok_or_else(|| {
                VerifyError::Segment(format!(
                    "{}: its interface {} does not exist; apply the configuration first (`cloison apply`)",
                    s.name, s.interface
                ))
            })?;
        let addrs = address::choose(h, config, s, i, ifindex, seg_mac).await?;
        attached.push(Attached::attach(h, lock, s, i, addrs).await?);
    }
    let hosts: Vec<ProbeHost> = attached
        .iter()
        .zip(&config.segments)
        .map(|(a, s)| ProbeHost {
            segment: s.name.clone(),
            v4: a.addresses.v4,
            v6: a.addresses.v6,
        })
        .collect();
    let list = probes(config, &hosts);

    // The tracer listens before the first probe leaves.
    let mut tracer = Tracer::open().map_err(VerifyError::Trace)?;
    let stop = Arc::new(AtomicBool::new(false));
    let tracing = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<TraceEvent>, VerifyError> {
            let mut all = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                all.extend(
                    tracer
                        .collect(Duration::from_millis(50))
                        .map_err(VerifyError::Trace)?,
                );
            }
            all.extend(tracer.collect(TRACE_GRACE).map_err(VerifyError::Trace)?);
            Ok(all)
        })
    };

    // Send, from every probe host at once.
    let mut waiting = Vec::new();
    for (a, ph) in attached.iter().zip(&hosts) {
        let specs: Vec<send::Spec> = list
            .iter()
            .enumerate()
            .filter(|(_, p)| p.from == ph.segment)
            .map(|(index, p)| send::Spec {
                index,
                src: source_of(ph, p.target),
                target: p.target,
                l4: p.l4,
            })
            .collect();
        waiting.push(a.probe(specs)?);
    }
    let sent: Vec<send::Sent> = tokio::task::spawn_blocking(move || {
        waiting
            .into_iter()
            .flat_map(|rx| rx.recv().unwrap_or_default())
            .collect()
    })
    .await
    .map_err(|e| VerifyError::Namespace(format!("the probe threads failed: {e}")))?;
    stop.store(true, Ordering::Relaxed);
    let events = tracing
        .await
        .map_err(|e| VerifyError::Namespace(format!("the tracer failed: {e}")))??;
    let verdicts = ruleset_verdicts(&events);

    // The routing's verdict on each probe, then the judgement.
    let names = route::link_names(h).await;
    let mut sent_by_index: BTreeMap<usize, send::Sent> =
        sent.into_iter().map(|s| (s.index, s)).collect();
    let wall = cloison_core::plan::wall::wall(config);
    let mut judged = Vec::with_capacity(list.len());
    for (index, p) in list.iter().enumerate() {
        let (a, ph) = attached
            .iter()
            .zip(&hosts)
            .find(|(_, ph)| ph.segment == p.from)
            .expect("every probe comes from a probe host");
        let s = sent_by_index.remove(&index);
        let sport = s.as_ref().and_then(|s| s.sport);
        let answer = s.map_or(
            cloison_core::verify::judge::Answer::NotSent {
                error: "lost".into(),
            },
            |s| s.answer,
        );
        let src = source_of(ph, p.target);
        let flow = flow_of(src, p, sport);
        let ruleset = flow
            .and_then(|f| verdicts.get(&f).cloned())
            .unwrap_or(RulesetVerdict::Unseen);
        let routing = route::ask(
            h,
            &route::Query {
                iif: a.ifindex,
                src,
                dst: p.target,
                proto: ip_proto(p),
                sport: sport.filter(|_| p.l4 != L4::Icmp),
                dport: p.l4.port(),
            },
            &names,
        )
        .await;
        judged.push(judge::judge(
            config,
            &wall,
            p,
            &Observation {
                sport,
                answer,
                ruleset,
                routing,
            },
        ));
    }
    Ok((hosts, judged))
}

fn source_of(ph: &ProbeHost, target: IpAddr) -> IpAddr {
    match (target, ph.v6) {
        (IpAddr::V6(_), Some(v6)) => IpAddr::V6(v6),
        _ => IpAddr::V4(ph.v4),
    }
}

fn ip_proto(p: &Probe) -> u8 {
    match p.l4 {
        L4::Tcp(_) => 6,
        L4::Udp(_) => 17,
        L4::Icmp if p.target.is_ipv4() => 1,
        L4::Icmp => 58,
    }
}

fn flow_of(src: IpAddr, p: &Probe, sport: Option<u16>) -> Option<Flow> {
    Some(Flow {
        src,
        dst: p.target,
        proto: ip_proto(p),
        sport: sport?,
        dport: p.l4.port().unwrap_or(0),
    })
}

/// Each traced flow's verdict. The kernel sends the packet's headers with the first
/// message of each hook only, so messages are tied to their flow by trace id. A drop
/// anywhere is the verdict; otherwise the last accept in cloison's decision chains
/// (where the decision was made), else the last accept.
fn ruleset_verdicts(events: &[TraceEvent]) -> BTreeMap<Flow, RulesetVerdict> {
    let mut flow_of_id: BTreeMap<u32, Flow> = BTreeMap::new();
    for e in events {
        if let Some(f) = e.flow {
            flow_of_id.entry(e.id).or_insert(f);
        }
    }
    let mut paths: BTreeMap<Flow, Vec<&crate::kernel::nfnetlink::trace::Verdict>> = BTreeMap::new();
    for e in events {
        if let (Some(f), Some(v)) = (flow_of_id.get(&e.id), &e.verdict) {
            paths.entry(*f).or_default().push(v);
        }
    }
    paths
        .into_iter()
        .map(|(flow, path)| {
            let verdict = match path.iter().find(|v| !v.accept) {
                Some(d) => RulesetVerdict::Dropped {
                    table: d.table.clone(),
                    chain: d.chain.clone(),
                },
                None => {
                    let last = path
                        .iter()
                        .rev()
                        .find(|v| v.table == TABLE && v.chain != cloison_core::names::CHAIN_SOURCES)
                        .or_else(|| path.last())
                        .expect("a traced flow has verdicts");
                    RulesetVerdict::Accepted {
                        table: last.table.clone(),
                        chain: last.chain.clone(),
                        handle: last.handle,
                    }
                }
            };
            (flow, verdict)
        })
        .collect()
}

/// Breach entries one run writes at most; the rest are counted in the last one's message
/// (and all are in the run's result document).
const MAX_BREACH_ENTRIES: usize = 20;

/// Journals a run: one `verify_passed` or `verify_failed` entry with the result document,
/// and an `isolation_breach` (CLOISON_VERIFY=1) for each blocked probe that got through a
/// wall, at most `MAX_BREACH_ENTRIES`.
pub fn journal(
    sink: &mut impl cloison_core::alert::Sink,
    router: &str,
    outcome: &Outcome,
    config_hash: &str,
) {
    use cloison_core::alert::{Alert, MAX_VERIFY_RESULT_LEN};
    use cloison_core::verify::result::Expected;
    let breaches: Vec<&Judgement> = outcome
        .judged
        .iter()
        .filter(|j| !j.as_expected && j.expected == Expected::Blocked)
        .collect();
    for (n, j) in breaches.iter().enumerate().take(MAX_BREACH_ENTRIES) {
        let mut detail = j.explanation.clone();
        if n + 1 == MAX_BREACH_ENTRIES && breaches.len() > MAX_BREACH_ENTRIES {
            detail.push_str(&format!(
                " ({} more breaches in this run's verify_failed entry)",
                breaches.len() - MAX_BREACH_ENTRIES
            ));
        }
        let to_segment =
            (!matches!(j.to.as_str(), "router" | "private" | "internet")).then_some(j.to.as_str());
        sink.write(&Alert::verify_breach(
            router,
            &j.from,
            to_segment,
            &j.to,
            &j.target,
            &j.probe,
            j.wall.as_deref().unwrap_or("none"),
            &detail,
        ));
    }
    let json = outcome.result.to_json_within(MAX_VERIFY_RESULT_LEN);
    sink.write(&Alert::verify_run(
        router,
        outcome.judged.len(),
        outcome.failures(),
        config_hash,
        &json,
        &cloison_core::verify::text::verdict(&outcome.judged),
    ));
}

/// Writes `<state dir>/verify-last.json` atomically (for `cloison metrics`).
pub fn write_record(
    state_dir: &std::path::Path,
    outcome: &Outcome,
    config_hash: &cloison_core::hash::Hash,
) -> std::io::Result<()> {
    use cloison_core::verify::{FILE_NAME, VerifyRecord, record::VERSION};
    let finished = (outcome.started + outcome.took)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let record = VerifyRecord {
        version: VERSION,
        finished,
        success: outcome.passed(),
        probes: u64::try_from(outcome.judged.len()).unwrap_or(u64::MAX),
        failures: u64::try_from(outcome.failures()).unwrap_or(u64::MAX),
        config_hash: config_hash.clone(),
    };
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join(FILE_NAME);
    let tmp = state_dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_vec(&record).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, &path)
}
