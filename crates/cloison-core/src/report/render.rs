//! The page: header, at a glance, the network, the latest isolation check, the alerts, the
//! rule changes, the check history. Everything from the configuration and the digest;
//! every value through `Out::text`.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{capitalise, explain};
use super::digest::Digest;
use super::html::{Civil, Out, number, utc_offset};
use super::svg::{chart, diagram, kind_colour, what};
use super::text::{Words, kind_name, pseudo, unlabelled, words};
use super::verify::{Expected, PairResult, VerifyRun};
use super::{Lang, Report};
use crate::alert::event::EventKind;
use crate::alert::field;
use crate::config::Config;
use crate::hash::SHORT_LEN;

const HOUR_US: u64 = 3_600_000_000;
/// Sources listed by name.
const TOP_SOURCES: usize = 10;
/// Lines of a change's detail shown (the journal has the rest).
const DETAIL_LINES: usize = 8;
/// Failed probes listed under a pair.
const FAILURES_SHOWN: usize = 5;
/// Up to this many hours, the chart has one bar an hour; then a day.
const HOURLY_UP_TO: u64 = 48;
/// Beyond this many days the chart has one bar a week.
const DAILY_UP_TO: u64 = 92;

/// One bar of the chart: its label and the packets of each kind.
type Bar = (String, BTreeMap<EventKind, u64>);

/// What one bar of the chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Hour,
    Day,
    Week,
}

const STYLE: &str = r#"<style>
@page { size: A4; margin: 14mm 14mm 16mm 14mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10.5pt; line-height: 1.4; color: #1e293b; margin: 0 auto; max-width: 182mm; padding: 6mm 0; }
h1 { font-size: 19pt; margin: 0 0 2mm; }
h2 { font-size: 13.5pt; margin: 7mm 0 2mm; padding-bottom: 1mm; border-bottom: 2px solid #cbd5e1; break-after: avoid; }
h3 { font-size: 11pt; margin: 4mm 0 1.5mm; break-after: avoid; }
p { margin: 1.5mm 0; }
.meta { color: #475569; margin: 0.5mm 0; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.9em; }
.hash { word-break: break-all; }
.glance { list-style: none; padding: 0; margin: 2mm 0; }
.glance li, .matrix li { padding: 1.8mm 3mm; margin: 1.2mm 0; border-radius: 3px; border-left: 5px solid #94a3b8; background: #f1f5f9; break-inside: avoid; }
.ok { border-left-color: #16a34a !important; background: #dcfce7 !important; }
.bad { border-left-color: #dc2626 !important; background: #fee2e2 !important; }
.warn { border-left-color: #d97706 !important; background: #fef3c7 !important; }
.matrix { list-style: none; padding: 0; margin: 2mm 0; }
.mark { font-weight: bold; margin-right: 1.5mm; }
.ok .mark { color: #15803d; } .bad .mark { color: #b91c1c; }
.rule { color: #475569; font-size: 0.88em; }
.fails { margin: 1mm 0 0 5mm; padding: 0; font-size: 0.92em; }
table { border-collapse: collapse; width: 100%; margin: 1.5mm 0 3mm; font-size: 9.5pt; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #f1f5f9; }
tr { break-inside: avoid; }
td.n, th.n { text-align: right; white-space: nowrap; }
td.when { white-space: nowrap; }
.detail { white-space: pre-wrap; font-size: 0.88em; }
.legend { list-style: none; padding: 0; margin: 0 0 2mm; font-size: 9pt; }
.legend li { display: inline-block; margin-right: 4mm; }
.swatch { display: inline-block; width: 3mm; height: 3mm; margin-right: 1mm; vertical-align: middle; }
dl.meanings dt { font-weight: bold; margin-top: 2.5mm; break-after: avoid; }
dl.meanings dd { margin: 0.5mm 0 0 0; }
dl.meanings dd p { margin: 0.8mm 0; }
.note { color: #475569; font-size: 0.92em; }
.glance-note { padding: 2mm 3mm; border-left: 5px solid #94a3b8; border-radius: 3px; }
tr.bad-row td { background: #fee2e2; }
tr.warn-row td { background: #fef3c7; }
tr.ok td:nth-child(2) { color: #15803d; font-weight: bold; }
tr.bad td:nth-child(2) { color: #b91c1c; font-weight: bold; }
svg { display: block; margin: 2mm 0; }
svg text { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; text-anchor: middle; }
.diagram .segment { fill: #f8fafc; stroke: #475569; stroke-width: 1.2; }
.diagram .segment.admin { fill: #e0f2fe; stroke: #0369a1; stroke-width: 1.8; }
.diagram .uplink { fill: #f1f5f9; stroke: #94a3b8; stroke-dasharray: 4 3; }
.diagram .router { fill: #1e293b; }
.diagram .link { stroke: #94a3b8; stroke-width: 1.5; }
.diagram .exception { fill: none; stroke: #15803d; stroke-width: 1.8; }
.t-bold { font-size: 11px; font-weight: bold; fill: #0f172a; }
.t-small { font-size: 10px; fill: #334155; }
.t-head { font-size: 11px; fill: #475569; font-weight: bold; }
.t-router { font-size: 12.5px; fill: #ffffff; font-weight: bold; }
.t-exception { font-size: 10px; fill: #15803d; font-weight: bold; }
.chart .axis { stroke: #94a3b8; }
.t-axis-y { font-size: 9px; fill: #475569; text-anchor: end; }
.t-axis-x { font-size: 9px; fill: #475569; }
@media print {
  body { font-size: 9.5pt; padding: 0; }
  h2 { margin-top: 5mm; }
  dl.meanings { font-size: 8.5pt; }
  .glance li, .matrix li { padding: 1.2mm 2.5mm; margin: 0.8mm 0; }
}
footer { margin-top: 8mm; padding-top: 2mm; border-top: 1px solid #cbd5e1; color: #475569; font-size: 8.5pt; }
</style>"#;

/// The whole page.
pub fn render(r: &Report<'_>, d: &Digest) -> String {
    let p = Page {
        r,
        d,
        w: words(r.lang),
    };
    let mut o = Out::new();
    o.raw("<!DOCTYPE html>\n<html lang=\"")
        .raw(p.w.html_lang)
        .raw("\"><head><meta charset=\"utf-8\">");
    o.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    o.raw("<title>")
        .text(p.w.title)
        .raw(" — ")
        .text(d.router())
        .raw("</title>");
    o.raw(STYLE).raw("</head><body>\n");
    p.header(&mut o);
    p.glance(&mut o);
    p.network(&mut o);
    p.verification(&mut o);
    p.alerts(&mut o);
    p.changes(&mut o);
    p.history(&mut o);
    o.raw("<footer>")
        .raw(p.w.footer)
        .raw("</footer>\n</body></html>\n");
    o.finish()
}

struct Page<'a> {
    r: &'a Report<'a>,
    d: &'a Digest,
    w: &'static Words,
}

impl Page<'_> {
    fn lang(&self) -> Lang {
        self.r.lang
    }

    fn local(&self, us: u64) -> Civil {
        Civil::at(us, (self.r.utc_offset)(us))
    }

    /// `28/11/2026 03:00`.
    fn when(&self, us: u64) -> String {
        let c = self.local(us);
        format!("{} {}", c.date(self.lang()), c.time())
    }

    fn num(&self, n: u64) -> String {
        number(self.lang(), n)
    }

    /// What people call a segment or destination: its label, else a phrase with its name.
    fn who(&self, name: &str) -> String {
        name_of(self.lang(), self.r.config, name)
    }

    fn header(&self, o: &mut Out) {
        let (w, d) = (self.w, self.d);
        o.raw("<header><h1>")
            .text(w.title)
            .raw("</h1>\n<p class=\"meta\">");
        o.fill(w.router_line, &[d.router()]).raw(" · ");
        let now = self.local(self.r.generated);
        o.fill(w.generated, &[&now.date(self.lang()), &now.time()]);
        o.raw("</p>\n<p class=\"meta\">");
        let (a, b) = (self.local(d.since), self.local(d.until));
        o.fill(
            w.period,
            &[
                &a.date(self.lang()),
                &a.time(),
                &b.date(self.lang()),
                &b.time(),
                &utc_offset((self.r.utc_offset)(d.until)),
            ],
        );
        o.raw("</p>\n<p class=\"meta\">");
        o.fill(
            w.config_line,
            &[self.r.config_path, self.r.config_hash.as_str()],
        );
        o.raw("</p>\n");
        if let Some(applied) = d.applied_hash()
            && applied != self.r.config_hash.as_str()
        {
            o.raw("<p class=\"glance-note warn\">")
                .fill(w.config_differs, &[applied])
                .raw("</p>\n");
        }
        o.raw("</header>\n");
    }

    fn glance(&self, o: &mut Out) {
        let (w, d) = (self.w, self.d);
        o.raw("<section id=\"glance\"><h2>")
            .text(w.glance)
            .raw("</h2><ul class=\"glance\">\n");
        match d.latest_verify() {
            Some(run) => {
                let c = self.local(run.time);
                let probes = self.num(run.probes.unwrap_or(0));
                let failures = self.num(run.failures.unwrap_or(0));
                let args: [&str; 4] = [&c.date(self.lang()), &c.time(), &probes, &failures];
                if run.passed {
                    o.raw("<li class=\"ok\">")
                        .fill(w.verify_passed_glance, &args);
                } else {
                    o.raw("<li class=\"bad\">")
                        .fill(w.verify_failed_glance, &args);
                }
            }
            None => {
                o.raw("<li class=\"warn\">").raw(w.verify_none_glance);
            }
        }
        o.raw("</li>\n");
        let breach = d.kinds.contains_key(&EventKind::IsolationBreach);
        o.raw(if breach { "<li class=\"bad\">" } else { "<li>" });
        o.fill(
            w.alerts_glance,
            &[&self.num(d.alert_entries()), &self.num(d.blocked_packets())],
        );
        o.raw("</li>\n");
        let count = |k| d.change_counts.get(&k).copied().unwrap_or(0);
        let drifts = count(EventKind::RulesetDrift);
        o.raw(if drifts > 0 {
            "<li class=\"bad\">"
        } else {
            "<li>"
        });
        o.fill(
            w.changes_glance,
            &[
                &self.num(count(EventKind::ConfigApplied)),
                &self.num(count(EventKind::ConfigRejected)),
                &self.num(drifts),
            ],
        );
        o.raw("</li>\n</ul>\n");
        if d.other_routers > 0 {
            o.raw("<p class=\"note\">")
                .fill(w.other_routers, &[&self.num(d.other_routers)])
                .raw("</p>\n");
        }
        if d.unknown_events > 0 {
            o.raw("<p class=\"note\">")
                .fill(w.unknown_events, &[&self.num(d.unknown_events)])
                .raw("</p>\n");
        }
        o.raw("</section>\n");
    }

    fn network(&self, o: &mut Out) {
        let (w, c) = (self.w, self.r.config);
        o.raw("<section id=\"network\"><h2>")
            .text(w.network)
            .raw("</h2>\n<p>")
            .text(w.network_intro)
            .raw("</p>\n");
        diagram(o, self.lang(), c, self.d.router());
        o.raw("<h3>").text(w.exceptions).raw("</h3>\n");
        if c.allows.is_empty() {
            o.raw("<p>").text(w.no_exceptions).raw("</p>\n");
        } else {
            o.raw("<ul id=\"exceptions\">\n");
            for a in &c.allows {
                let from = capitalise(&self.who(a.from.as_str()));
                let to = self.who(a.to.as_str());
                let what = what(a.proto, &a.ports);
                o.raw("<li>");
                match &a.comment {
                    Some(comment) => o.fill(w.exception_line, &[&from, &to, &what, comment]),
                    None => o.fill(w.exception_line_bare, &[&from, &to, &what]),
                };
                o.raw("</li>\n");
            }
            o.raw("</ul>\n");
        }
        if !c.forbids.is_empty() {
            o.raw("<h3>")
                .text(w.forbids)
                .raw("</h3>\n<ul id=\"forbids\">\n");
            for f in &c.forbids {
                let names = |list: &[crate::config::Name]| {
                    list.iter()
                        .map(|n| self.who(n.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let what = match f.proto {
                    Some(p) => what(p, &f.ports),
                    None => w.every_protocol.to_owned(),
                };
                o.raw("<li>").fill(
                    w.forbid_line,
                    &[&capitalise(&names(&f.from)), &names(&f.to), &what],
                );
                if let Some(comment) = &f.comment {
                    o.raw(" — ").text(comment);
                }
                o.raw("</li>\n");
            }
            o.raw("</ul>\n");
        }
        o.raw("</section>\n");
    }

    fn verification(&self, o: &mut Out) {
        let w = self.w;
        o.raw("<section id=\"verification\"><h2>")
            .text(w.verification)
            .raw("</h2>\n");
        let Some(run) = self.d.latest_verify() else {
            o.raw("<p class=\"glance-note warn\" id=\"no-verify\">")
                .fill(w.no_verify, &["cloison verify"])
                .raw("</p>\n</section>\n");
            return;
        };
        o.raw("<p>").raw(w.verification_intro).raw("</p>\n");
        if let Some(h) = &run.config_hash
            && h != self.r.config_hash.as_str()
        {
            o.raw("<p class=\"note\">")
                .fill(w.verify_other_config, &[h])
                .raw("</p>\n");
        }
        match &run.result {
            Ok(result) => {
                o.raw("<ul class=\"matrix\" id=\"matrix\">\n");
                for pair in &by_direction(&result.pairs) {
                    self.pair(o, run, pair);
                }
                o.raw("</ul>\n");
            }
            Err(why) => {
                o.raw("<p class=\"note\">")
                    .fill(w.verify_unreadable, &[why])
                    .raw("</p>\n");
            }
        }
        o.raw("</section>\n");
    }

    /// One line of the matrix, in words.
    fn pair(&self, o: &mut Out, run: &VerifyRun, p: &PairResult) {
        let w = self.w;
        let c = self.local(run.time);
        let (date, time) = (c.date(self.lang()), c.time());
        let from = capitalise(&self.who(&p.from));
        let to = self.who(&p.to);
        let probes = self.num(p.probes);
        let failed = self.num(
            p.probes
                .saturating_sub(p.as_expected)
                .max(len(p.failures.len())),
        );
        let ok = p.passed();
        o.raw(if ok {
            "<li class=\"ok\"><span class=\"mark\">✓</span>"
        } else {
            "<li class=\"bad\"><span class=\"mark\">✗</span>"
        });
        match (p.expected, ok) {
            (Expected::Blocked, true) if p.probes == 1 => {
                o.fill(w.blocked_ok_1, &[&from, &to, &date, &time])
            }
            (Expected::Blocked, true) => o.fill(w.blocked_ok, &[&from, &to, &date, &time, &probes]),
            (Expected::Blocked, false) => o.fill(
                w.blocked_fail,
                &[&from, &to, &failed, &probes, &date, &time],
            ),
            (Expected::Allowed, true) if p.probes == 1 => {
                o.fill(w.allowed_ok_1, &[&from, &to, &date, &time])
            }
            (Expected::Allowed, true) => o.fill(w.allowed_ok, &[&from, &to, &date, &time, &probes]),
            (Expected::Allowed, false) => o.fill(
                w.allowed_fail,
                &[&from, &to, &failed, &probes, &date, &time],
            ),
        };
        if !p.failures.is_empty() {
            o.raw("<ul class=\"fails\">");
            for f in p.failures.iter().take(FAILURES_SHOWN) {
                let wall = if f.wall.is_empty() {
                    w.nowhere
                } else {
                    f.wall.as_str()
                };
                o.raw("<li>")
                    .fill(w.failure_item, &[&f.probe, &f.target, &f.observed, wall])
                    .raw("</li>");
            }
            if p.failures.len() > FAILURES_SHOWN {
                o.raw("<li>")
                    .fill(
                        w.left_out,
                        &[&self.num(len(p.failures.len() - FAILURES_SHOWN))],
                    )
                    .raw("</li>");
            }
            o.raw("</ul>");
        }
        if !p.reason.is_empty() {
            o.raw("<br><span class=\"rule\">")
                .fill(w.rule, &[&p.reason])
                .raw("</span>");
        }
        o.raw("</li>\n");
    }

    fn alerts(&self, o: &mut Out) {
        let (w, d) = (self.w, self.d);
        o.raw("<section id=\"alerts\"><h2>")
            .text(w.alerts)
            .raw("</h2>\n");
        if d.kinds.is_empty() {
            o.raw("<p>").text(w.no_alerts).raw("</p>\n");
            self.meanings(o);
            o.raw("</section>\n");
            return;
        }
        o.raw("<p>").text(w.alerts_intro).raw("</p>\n");
        if d.verify_probes.entries > 0 {
            o.raw("<p class=\"note\" id=\"verify-probes\">")
                .fill(
                    w.verify_probes_note,
                    &[
                        &self.num(d.verify_probes.packets),
                        &self.num(d.verify_probes.entries),
                    ],
                )
                .raw("</p>\n");
        }

        o.raw("<h3>")
            .text(w.by_kind)
            .raw("</h3>\n<table id=\"alerts-by-kind\"><thead><tr><th>");
        o.text(w.col_kind)
            .raw("</th><th class=\"n\">")
            .text(w.col_entries)
            .raw("</th><th class=\"n\">");
        o.text(w.col_packets)
            .raw("</th><th>")
            .text(w.col_first)
            .raw("</th><th>")
            .text(w.col_last);
        o.raw("</th></tr></thead><tbody>\n");
        for (kind, t) in &d.kinds {
            o.raw("<tr data-kind=\"").raw(kind.name()).raw("\"><td>");
            o.raw("<span class=\"swatch\" style=\"background:")
                .raw(kind_colour(*kind))
                .raw("\"></span>");
            o.text(kind_name(self.lang(), *kind))
                .raw(" <code>")
                .raw(kind.name())
                .raw("</code></td>");
            o.raw("<td class=\"n\">")
                .text(self.num(t.entries))
                .raw("</td><td class=\"n\">")
                .text(self.num(t.packets));
            o.raw("</td><td class=\"when\">")
                .text(t.first.map(|f| self.when(f)).unwrap_or_default());
            o.raw("</td><td class=\"when\">")
                .text(t.last.map(|l| self.when(l)).unwrap_or_default());
            o.raw("</td></tr>\n");
        }
        o.raw("</tbody></table>\n");

        let (bars, unit) = self.bars();
        let title = match unit {
            Unit::Hour => w.chart_title_hourly,
            Unit::Day => w.chart_title,
            Unit::Week => w.chart_title_weekly,
        };
        o.raw("<h3>").text(title).raw("</h3>\n");
        chart(o, self.lang(), &bars);
        o.raw("<ul class=\"legend\">");
        for kind in d.kinds.keys() {
            o.raw("<li><span class=\"swatch\" style=\"background:")
                .raw(kind_colour(*kind))
                .raw("\"></span>");
            o.text(kind_name(self.lang(), *kind)).raw("</li>");
        }
        o.raw("</ul>\n");

        o.raw("<h3>")
            .text(w.by_route)
            .raw("</h3>\n<table id=\"alerts-by-route\"><thead><tr><th>");
        o.text(w.col_from)
            .raw("</th><th>")
            .text(w.col_to)
            .raw("</th><th>")
            .text(w.col_kind);
        o.raw("</th><th class=\"n\">")
            .text(w.col_entries)
            .raw("</th><th class=\"n\">")
            .text(w.col_packets);
        o.raw("</th></tr></thead><tbody>\n");
        let mut routes: Vec<_> = d.routes.iter().collect();
        routes.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(a.0.cmp(b.0)));
        for (route, t) in routes {
            o.raw("<tr data-from=\"")
                .text(&route.from)
                .raw("\" data-to=\"")
                .text(&route.to);
            o.raw("\" data-kind=\"")
                .raw(route.kind.name())
                .raw("\"><td>");
            self.place(o, &route.from);
            o.raw("</td><td>");
            self.place(o, &route.to);
            o.raw("</td><td>").text(kind_name(self.lang(), route.kind));
            o.raw("</td><td class=\"n\">")
                .text(self.num(t.entries))
                .raw("</td><td class=\"n\">")
                .text(self.num(t.packets));
            o.raw("</td></tr>\n");
        }
        o.raw("</tbody></table>\n");

        o.raw("<h3>")
            .text(w.top_sources)
            .raw("</h3>\n<table id=\"top-sources\"><thead><tr><th>");
        o.text(w.col_source)
            .raw("</th><th>")
            .text(w.col_segment)
            .raw("</th><th>")
            .text(w.col_kinds);
        o.raw("</th><th class=\"n\">")
            .text(w.col_entries)
            .raw("</th><th class=\"n\">")
            .text(w.col_packets);
        o.raw("</th></tr></thead><tbody>\n");
        for (source, t) in d.top_sources(TOP_SOURCES) {
            o.raw("<tr><td>");
            if source.address.is_empty() {
                o.text(w.address_unknown);
            } else {
                o.raw("<code>").text(&source.address).raw("</code>");
            }
            o.raw("</td><td>");
            self.place(o, &source.segment);
            o.raw("</td><td>");
            let kinds: Vec<&str> = t.kinds.iter().map(|k| kind_name(self.lang(), *k)).collect();
            o.text(kinds.join(", "));
            o.raw("</td><td class=\"n\">")
                .text(self.num(t.entries))
                .raw("</td><td class=\"n\">")
                .text(self.num(t.packets));
            o.raw("</td></tr>\n");
        }
        let listed: u64 = d
            .top_sources(TOP_SOURCES)
            .iter()
            .map(|(_, t)| t.packets)
            .sum();
        let all: u64 = d.sources.values().map(|t| t.packets).sum::<u64>() + d.other_sources.packets;
        let entries_listed: u64 = d
            .top_sources(TOP_SOURCES)
            .iter()
            .map(|(_, t)| t.entries)
            .sum();
        let entries_all: u64 =
            d.sources.values().map(|t| t.entries).sum::<u64>() + d.other_sources.entries;
        if entries_all > entries_listed {
            o.raw("<tr><td colspan=\"3\">")
                .text(w.other_sources)
                .raw("</td><td class=\"n\">");
            o.text(self.num(entries_all - entries_listed))
                .raw("</td><td class=\"n\">")
                .text(self.num(all - listed));
            o.raw("</td></tr>\n");
        }
        o.raw("</tbody></table>\n");
        self.meanings(o);
        o.raw("</section>\n");
    }

    /// A segment or destination in a table cell: what people call it, and its name.
    fn place(&self, o: &mut Out, name: &str) {
        if name.is_empty() {
            o.text(self.w.nowhere);
            return;
        }
        o.text(capitalise(&self.who(name)));
        if self
            .r
            .config
            .segment(name)
            .is_some_and(|s| s.label.is_some())
        {
            o.raw(" <code>").text(name).raw("</code>");
        }
    }

    /// The chart's bars: hours for a period of up to two days, days up to three months,
    /// weeks beyond, in local time, with the packets of each kind. Also which unit.
    fn bars(&self) -> (Vec<Bar>, Unit) {
        let d = self.d;
        let span_hours = d.until.saturating_sub(d.since) / HOUR_US;
        let unit = if span_hours <= HOURLY_UP_TO {
            Unit::Hour
        } else if span_hours / 24 <= DAILY_UP_TO {
            Unit::Day
        } else {
            Unit::Week
        };
        let mut bars: Vec<(i64, String, BTreeMap<EventKind, u64>)> = Vec::new();
        let mut hour = d.since / HOUR_US;
        while hour <= d.until / HOUR_US {
            let start = hour * HOUR_US;
            let c = self.local(start.max(d.since));
            let (key, label) = match unit {
                Unit::Hour => (i64::try_from(hour).unwrap_or(0), self.local(start).time()),
                Unit::Day => (
                    c.year * 10_000 + i64::from(c.month) * 100 + i64::from(c.day),
                    c.day_month(self.lang()),
                ),
                Unit::Week => {
                    let week = (start.max(d.since) - d.since) / (7 * 24 * HOUR_US);
                    (i64::try_from(week).unwrap_or(0), c.day_month(self.lang()))
                }
            };
            if bars.last().is_none_or(|(k, _, _)| *k != key) {
                bars.push((key, label, BTreeMap::new()));
            }
            if let Some(kinds) = d.hourly.get(&hour)
                && let Some((_, _, bucket)) = bars.last_mut()
            {
                for (k, p) in kinds {
                    *bucket.entry(*k).or_default() += p;
                }
            }
            hour += 1;
        }
        (bars.into_iter().map(|(_, l, b)| (l, b)).collect(), unit)
    }

    /// The catalog's explanation of every kind the page mentions.
    fn meanings(&self, o: &mut Out) {
        let d = self.d;
        let mut kinds: BTreeSet<EventKind> = d.kinds.keys().copied().collect();
        kinds.extend(d.change_counts.keys().copied());
        if let Some(run) = d.latest_verify() {
            kinds.insert(if run.passed {
                EventKind::VerifyPassed
            } else {
                EventKind::VerifyFailed
            });
        }
        if kinds.is_empty() {
            return;
        }
        o.raw("<h3>")
            .text(self.w.meanings)
            .raw("</h3>\n<dl class=\"meanings\">\n");
        for kind in kinds {
            let Some(e) = explain(kind, self.lang(), d.router()) else {
                continue;
            };
            o.raw("<dt>")
                .text(&e.subject)
                .raw(" <code>")
                .raw(kind.name())
                .raw("</code></dt><dd>");
            for p in &e.paragraphs {
                // The catalog quotes commands and keys between backticks.
                o.raw("<p>");
                for (i, part) in p.split('`').enumerate() {
                    if i % 2 == 1 {
                        o.raw("<code>").text(part).raw("</code>");
                    } else {
                        o.text(part);
                    }
                }
                o.raw("</p>");
            }
            o.raw("</dd>\n");
        }
        o.raw("</dl>\n");
    }

    fn changes(&self, o: &mut Out) {
        let (w, d) = (self.w, self.d);
        o.raw("<section id=\"changes\"><h2>")
            .text(w.changes)
            .raw("</h2>\n");
        if d.changes.is_empty() {
            o.raw("<p>").text(w.no_changes).raw("</p>\n</section>\n");
            return;
        }
        o.raw("<p>")
            .text(w.changes_intro)
            .raw("</p>\n<table id=\"changes-table\"><thead><tr><th>");
        o.text(w.col_when)
            .raw("</th><th>")
            .text(w.col_event)
            .raw("</th><th>")
            .text(w.col_hash);
        o.raw("</th><th>")
            .text(w.col_detail)
            .raw("</th><th>")
            .text(w.col_who)
            .raw("</th></tr></thead><tbody>\n");
        for e in &d.changes {
            let Some(kind) = e.kind() else { continue };
            let (class, name) = match kind {
                EventKind::ConfigApplied => ("", w.applied),
                EventKind::ConfigRejected => (" class=\"warn-row\"", w.rejected),
                _ => (" class=\"bad-row\"", w.drift),
            };
            o.raw("<tr data-kind=\"")
                .raw(kind.name())
                .raw("\"")
                .raw(class)
                .raw("><td class=\"when\">");
            o.text(self.when(e.time))
                .raw("</td><td>")
                .text(name)
                .raw("</td><td>");
            let new = e.get(field::NEW_HASH).or(e.get(field::CONFIG_HASH));
            match (e.get(field::OLD_HASH), new) {
                (Some(old), Some(new)) => {
                    o.raw("<code>")
                        .text(short(old))
                        .raw("</code> → <code class=\"hash\">")
                        .text(new)
                        .raw("</code>");
                }
                (None, Some(new)) => {
                    o.raw("<code class=\"hash\">").text(new).raw("</code>");
                }
                _ => {
                    o.text(w.nowhere);
                }
            }
            o.raw("</td><td>");
            if let Some(config) = e.get(field::CONFIG) {
                o.raw("<code>").text(config).raw("</code><br>");
            }
            if let Some(detail) = e.get(field::DETAIL) {
                let lines: Vec<&str> = detail.lines().collect();
                o.raw("<span class=\"detail\">").text(
                    lines
                        .iter()
                        .take(DETAIL_LINES)
                        .copied()
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                if lines.len() > DETAIL_LINES {
                    o.raw("\n")
                        .fill(w.left_out, &[&self.num(len(lines.len() - DETAIL_LINES))]);
                }
                o.raw("</span>");
            }
            match e.get(field::REPAIRED) {
                Some("yes") => {
                    o.raw("<br>").text(w.repaired_yes);
                }
                Some("no") => {
                    o.raw("<br>").text(w.repaired_no);
                }
                _ => {}
            }
            o.raw("</td><td>");
            match (e.get(field::ACTOR_COMM), e.get(field::ACTOR_PID)) {
                (Some(comm), Some(pid)) => {
                    o.fill(w.actor, &[comm, pid]);
                }
                (Some(comm), None) => {
                    o.text(comm);
                }
                (None, Some(pid)) => {
                    o.fill(w.actor, &["?", pid]);
                }
                (None, None) if kind == EventKind::RulesetDrift => {
                    o.text(w.actor_unknown);
                }
                (None, None) => {
                    o.text(w.nowhere);
                }
            }
            o.raw("</td></tr>\n");
        }
        o.raw("</tbody></table>\n");
        if d.changes_left_out > 0 {
            o.raw("<p class=\"note\">")
                .fill(w.left_out, &[&self.num(d.changes_left_out)])
                .raw("</p>\n");
        }
        o.raw("</section>\n");
    }

    fn history(&self, o: &mut Out) {
        let (w, d) = (self.w, self.d);
        o.raw("<section id=\"history\"><h2>")
            .text(w.history)
            .raw("</h2>\n");
        if d.verify.is_empty() {
            o.raw("<p>").text(w.no_history).raw("</p>\n</section>\n");
            return;
        }
        o.raw("<table id=\"verify-history\"><thead><tr><th>")
            .text(w.col_when)
            .raw("</th><th>");
        o.text(w.col_result)
            .raw("</th><th class=\"n\">")
            .text(w.col_probes)
            .raw("</th><th class=\"n\">");
        o.text(w.col_failures)
            .raw("</th><th>")
            .text(w.col_hash)
            .raw("</th></tr></thead><tbody>\n");
        for run in d.verify.iter().rev() {
            o.raw(if run.passed {
                "<tr class=\"ok\"><td class=\"when\">"
            } else {
                "<tr class=\"bad\"><td class=\"when\">"
            });
            o.text(self.when(run.time)).raw("</td><td>");
            o.text(if run.passed { w.passed } else { w.failed });
            o.raw("</td><td class=\"n\">")
                .text(run.probes.map(|n| self.num(n)).unwrap_or_default());
            o.raw("</td><td class=\"n\">")
                .text(run.failures.map(|n| self.num(n)).unwrap_or_default());
            o.raw("</td><td><code>")
                .text(run.config_hash.as_deref().map(short).unwrap_or_default());
            o.raw("</code></td></tr>\n");
        }
        o.raw("</tbody></table>\n");
        if d.verify_left_out > 0 {
            o.raw("<p class=\"note\">")
                .fill(w.left_out, &[&self.num(d.verify_left_out)])
                .raw("</p>\n");
        }
        o.raw("</section>\n");
    }
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The first 12 characters of a hash.
fn short(h: &str) -> &str {
    match h.char_indices().nth(SHORT_LEN) {
        Some((i, _)) => &h[..i],
        None => h,
    }
}

/// What people call `name`: the segment's label, a pseudo-destination's phrase, or a
/// phrase with the bare name.
pub fn name_of(lang: Lang, config: &Config, name: &str) -> String {
    if let Some(label) = config.segment(name).and_then(|s| s.label.clone()) {
        return label;
    }
    if let Some(p) = pseudo(lang, name) {
        return p.to_owned();
    }
    unlabelled(lang).replace("{0}", name)
}

/// The verify result as a reader needs it: one line per source, destination and
/// expectation (a council does not need the router's DNS and DHCP apart), in the
/// result's order, with the probes, those as expected and the failures added up.
fn by_direction(pairs: &[PairResult]) -> Vec<PairResult> {
    let mut out: Vec<PairResult> = Vec::new();
    for p in pairs {
        match out
            .iter_mut()
            .find(|o| o.from == p.from && o.to == p.to && o.expected == p.expected)
        {
            Some(o) => {
                o.probes += p.probes;
                o.as_expected += p.as_expected;
                o.failures.extend(p.failures.iter().cloned());
                if !p.reason.is_empty() && !o.reason.contains(&p.reason) {
                    if !o.reason.is_empty() {
                        o.reason.push_str("; ");
                    }
                    o.reason.push_str(&p.reason);
                }
            }
            None => out.push(p.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::report::journal::Entry;

    const LAB: &str = include_str!("../../../../config/lab.toml");
    /// 2026-11-28T02:00:00Z: 03:00 in Paris.
    const T: u64 = 1_795_831_200_000_000;
    const DAY: u64 = 24 * HOUR_US;

    #[test]
    fn the_matrix_has_one_line_per_direction_and_expectation() {
        let pair = |to: &str, expected, reason: &str, probes, ok| PairResult {
            from: "kiosk".into(),
            to: to.into(),
            expected,
            reason: reason.into(),
            probes,
            as_expected: ok,
            failures: Vec::new(),
        };
        let lines = by_direction(&[
            pair("router", Expected::Blocked, "not a service", 18, 18),
            pair("router", Expected::Allowed, "service dns", 4, 4),
            pair("router", Expected::Allowed, "service dhcp", 2, 1),
            pair(
                "mairie",
                Expected::Blocked,
                "[[forbid]] kiosk -> mairie",
                44,
                44,
            ),
            pair("router", Expected::Blocked, "only its own address", 44, 44),
        ]);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert_eq!((lines[0].probes, lines[0].as_expected), (62, 62));
        assert_eq!(lines[0].reason, "not a service; only its own address");
        assert_eq!((lines[1].probes, lines[1].as_expected), (6, 5));
        assert!(!lines[1].passed());
        assert_eq!(lines[2].to, "mairie");
    }

    fn paris(_: u64) -> i32 {
        3600
    }

    fn config() -> Config {
        crate::config::parse(LAB, "lab.toml").unwrap()
    }

    fn entry(time: u64, event: &str, fields: &[(&str, &str)]) -> Entry {
        let mut f = vec![
            (field::EVENT.to_owned(), event.to_owned()),
            (field::ROUTER.to_owned(), "mairie-lab".to_owned()),
            ("SYSLOG_IDENTIFIER".to_owned(), "cloison".to_owned()),
        ];
        f.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Entry::new(time, f)
    }

    const PASSED: &str = r#"{"version":1,"pairs":[
        {"from":"kiosk","to":"mairie","expected":"blocked","reason":"[[forbid]] kiosk -> mairie","probes":24,"as_expected":24,"failures":[]},
        {"from":"mairie","to":"kiosk","expected":"allowed","reason":"[[allow]] mairie -> kiosk tcp/5900","probes":1,"as_expected":1,"failures":[]},
        {"from":"kiosk","to":"router","expected":"blocked","reason":"kiosk may use dns, dhcp","probes":8,"as_expected":8,"failures":[]}]}"#;

    const FAILED: &str = r#"{"version":1,"pairs":[
        {"from":"kiosk","to":"mairie","expected":"blocked","reason":"[[forbid]] kiosk -> mairie","probes":24,"as_expected":23,
         "failures":[{"probe":"tcp/445","target":"192.168.10.5","observed":"open","wall":"none"}]},
        {"from":"poste","to":"internet","expected":"allowed","reason":"uplink laposte","probes":4,"as_expected":0,
         "failures":[{"probe":"tcp/443","target":"203.0.113.10","observed":"no answer","wall":""}]}]}"#;

    fn story() -> Vec<Entry> {
        vec![
            entry(
                T - 3 * DAY,
                "config_applied",
                &[
                    (field::NEW_HASH, &"a".repeat(64)),
                    (field::CONFIG, "/etc/cloison/cloison.toml"),
                    (field::DETAIL, "3 segments"),
                ],
            ),
            entry(
                T - 2 * DAY,
                "verify_failed",
                &[
                    (field::VERIFY_PROBES, "28"),
                    (field::VERIFY_FAILURES, "5"),
                    (field::CONFIG_HASH, &"a".repeat(64)),
                    (field::VERIFY_RESULT, FAILED),
                ],
            ),
            entry(
                T - DAY,
                "cross_segment",
                &[
                    (field::SRC_SEGMENT, "kiosk"),
                    (field::DST_SEGMENT, "mairie"),
                    (field::SRC_IP, "192.168.20.15"),
                    (field::COUNTER, "kiosk/mairie"),
                    (field::PACKETS, "1"),
                ],
            ),
            entry(
                T - DAY + 10,
                "cross_segment",
                &[
                    (field::COUNTER, "kiosk/mairie"),
                    (field::PACKETS, "50008"),
                    (field::SUMMARY, "1"),
                ],
            ),
            entry(
                T - DAY + 20,
                "router_access",
                &[
                    (field::SRC_SEGMENT, "kiosk"),
                    (field::SRC_IP, "192.168.20.15"),
                    (field::COUNTER, "kiosk/router"),
                    (field::PACKETS, "3"),
                ],
            ),
            entry(
                T - DAY + 30,
                "ruleset_drift",
                &[
                    (field::DETAIL, "chain forward: rule removed"),
                    (field::REPAIRED, "yes"),
                    (field::ACTOR_PID, "4242"),
                    (field::ACTOR_COMM, "nft"),
                ],
            ),
            entry(
                T,
                "verify_passed",
                &[
                    (field::VERIFY_PROBES, "33"),
                    (field::VERIFY_FAILURES, "0"),
                    (field::CONFIG_HASH, &"a".repeat(64)),
                    (field::VERIFY_RESULT, PASSED),
                ],
            ),
        ]
    }

    fn page(lang: Lang, entries: Vec<Entry>, hash: &Hash) -> String {
        let config = config();
        let mut d = Digest::new("mairie-lab", T - 30 * DAY, T + HOUR_US);
        for e in entries {
            d.add(e);
        }
        let r = Report {
            lang,
            config: &config,
            config_path: "/etc/cloison/cloison.toml",
            config_hash: hash,
            generated: T + HOUR_US,
            utc_offset: &paris,
        };
        render(&r, &d)
    }

    fn hash_a() -> Hash {
        Hash::parse(&"a".repeat(64)).unwrap()
    }

    /// The page's text without markup, whitespace folded (what a reader sees, roughly).
    fn visible(html: &str) -> String {
        let body = &html[html.find("<body>").unwrap()..];
        let mut out = String::new();
        let mut in_tag = false;
        for c in body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    out.push(' ');
                }
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_matrix_reads_as_sentences() {
        let html = page(Lang::Fr, story(), &hash_a());
        let text = visible(&html);
        for want in [
            "✓ Le poste public France Services ne peut pas joindre le réseau de la mairie : vérifié le 28/11/2026 à 03:00, 24 essais, tous bloqués.",
            "✓ Le réseau de la mairie peut joindre le poste public France Services, comme prévu : vérifié le 28/11/2026 à 03:00, 1 essai, abouti.",
            "Le poste public France Services ne peut pas joindre le routeur lui-même : vérifié le 28/11/2026 à 03:00, 8 essais, tous bloqués.",
            "Règle : [[forbid]] kiosk -&gt; mairie",
            "Isolement vérifié le 28/11/2026 à 03:00 : 33 essais, tous conformes.",
            "Routeur mairie-lab",
            "Période du 29/10/2026 à 03:00 au 28/11/2026 à 04:00 (heure locale, UTC+01:00)",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(html.contains("<li class=\"ok\"><span class=\"mark\">✓</span>Le poste public"));
    }

    #[test]
    fn a_failed_check_is_red_and_names_the_flow() {
        let mut entries = story();
        entries.pop();
        let html = page(Lang::Fr, entries, &hash_a());
        let text = visible(&html);
        for want in [
            "✗ Le poste public France Services a pu joindre le réseau de la mairie : 1 essais sur 24 sont passés, vérifié le 26/11/2026 à 03:00.",
            "tcp/445 vers 192.168.10.5 : open (barrière franchie : none)",
            "✗ Le guichet La Poste ne peut pas joindre Internet alors que c'est prévu : 4 essais sur 4 ont échoué",
            "ÉCHEC de la dernière vérification, le 26/11/2026 à 03:00 : 5 essais sur 28 non conformes.",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(html.contains("<li class=\"bad\"><span class=\"mark\">✗</span>"));
    }

    #[test]
    fn without_a_check_the_page_says_so_and_what_to_run() {
        let entries: Vec<Entry> = story()
            .into_iter()
            .filter(|e| {
                !matches!(
                    e.kind(),
                    Some(EventKind::VerifyPassed | EventKind::VerifyFailed)
                )
            })
            .collect();
        let text = visible(&page(Lang::Fr, entries, &hash_a()));
        assert!(
            text.contains("Aucune vérification n'a été faite pendant cette période"),
            "{text}"
        );
        assert!(
            text.contains("lancez cloison verify sur le routeur"),
            "{text}"
        );
        assert!(text.contains("Aucune vérification de l'isolement pendant la période."));
        assert!(text.contains("Aucune vérification pendant la période."));
        let en = visible(&page(Lang::En, Vec::new(), &hash_a()));
        assert!(en.contains("No check was made during this period"), "{en}");
        assert!(en.contains("run cloison verify on the router"));
        assert!(en.contains("No alert during the period."));
        assert!(en.contains("No rule change during the period."));
    }

    #[test]
    fn figures_are_the_sums_of_the_entries() {
        let html = page(Lang::En, story(), &hash_a());
        let text = visible(&html);
        for want in [
            "3 alerts during the period, 50,012 packets blocked.",
            "1 configuration(s) applied, 0 rejected, 1 change(s) of the rules outside cloison.",
            "Crossing between segments, blocked cross_segment 2 50,009",
            "Access to the router, blocked router_access 1 3",
            "Le poste public France Services kiosk Le réseau de la mairie mairie Crossing between segments, blocked 2 50,009",
            "192.168.20.15 Le poste public France Services kiosk Crossing between segments, blocked, Access to the router, blocked 2 4",
            "(addresses not detailed) Le poste public France Services kiosk Crossing between segments, blocked 1 50,008",
            "Rules changed outside cloison",
            "nft (process 4242)",
            "Configured rules restored.",
            "Blocked traffic between network segments cross_segment",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        // The diagram names every segment and uplink, and the exception.
        for want in [
            "le réseau de la mairie",
            "kiosk · seg-kiosk",
            "192.168.30.0/24",
            "la ligne La Poste",
            ">tcp/5900<",
        ] {
            assert!(html.contains(want), "diagram lacks {want:?}");
        }
        // History, newest first.
        let passed = html
            .find("<tr class=\"ok\"><td class=\"when\">2026-11-28 03:00")
            .unwrap();
        let failed = html
            .find("<tr class=\"bad\"><td class=\"when\">2026-11-26 03:00")
            .unwrap();
        assert!(passed < failed);
    }

    #[test]
    fn a_file_changed_since_it_was_applied_is_pointed_out() {
        let other = Hash::of(b"another file");
        let text = visible(&page(Lang::Fr, story(), &other));
        assert!(text.contains("différente de ce fichier"), "{text}");
        assert!(text.contains("Cette vérification portait sur une autre configuration"));
        assert!(!visible(&page(Lang::Fr, story(), &hash_a())).contains("différente de ce fichier"));
    }

    #[test]
    fn journal_values_never_become_markup() {
        let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
        let result = format!(
            r#"{{"version":1,"pairs":[{{"from":"{0}","to":"{0}","expected":"blocked","reason":"{0}","probes":2,"as_expected":1,"failures":[{{"probe":"{0}","target":"{0}","observed":"{0}","wall":"{0}"}}]}}]}}"#,
            "<script>x</script>"
        );
        let entries = vec![
            entry(
                T,
                "arp_spoof",
                &[
                    (field::SRC_SEGMENT, evil),
                    (field::DST_SEGMENT, evil),
                    (field::SRC_IP, evil),
                    (field::COUNTER, evil),
                    (field::PACKETS, "1"),
                    ("MESSAGE", evil),
                ],
            ),
            entry(
                T,
                "ruleset_drift",
                &[
                    (field::DETAIL, evil),
                    (field::ACTOR_COMM, evil),
                    (field::ACTOR_PID, evil),
                    (field::NEW_HASH, evil),
                    (field::OLD_HASH, evil),
                    (field::CONFIG, evil),
                ],
            ),
            entry(
                T,
                "verify_failed",
                &[
                    (field::VERIFY_PROBES, "2"),
                    (field::VERIFY_FAILURES, "1"),
                    (field::CONFIG_HASH, evil),
                    (field::VERIFY_RESULT, &result),
                ],
            ),
        ];
        for lang in [Lang::Fr, Lang::En] {
            let html = page(lang, entries.clone(), &hash_a());
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("<img"));
            assert_only_own_markup(&html);
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            assert!(
                html.contains("&lt;script&gt;x&lt;/script&gt;"),
                "verify values too"
            );
        }
    }

    /// Every tag is one the renderer writes, and no tag carries an event handler.
    fn assert_only_own_markup(html: &str) {
        const TAGS: &[&str] = &[
            "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "footer",
            "section", "h1", "h2", "h3", "p", "b", "br", "code", "span", "ul", "li", "dl", "dt",
            "dd", "table", "thead", "tbody", "tr", "th", "td", "svg", "defs", "marker", "path",
            "text", "rect", "line",
        ];
        for (at, _) in html.match_indices('<') {
            let tag = &html[at + 1..];
            let end = tag.find('>').expect("every tag is closed");
            let inside = &tag[..end];
            let name = inside
                .trim_start_matches('/')
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap();
            assert!(TAGS.contains(&name), "unexpected tag <{inside}>");
            // Attribute names only: values are quoted, and a `"` in a value is escaped.
            let names: String = inside.split('"').step_by(2).collect();
            assert!(
                !names
                    .split_whitespace()
                    .any(|a| a.to_ascii_lowercase().starts_with("on")),
                "event handler in <{inside}>"
            );
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = page(Lang::Fr, story(), &hash_a());
        for banned in [
            "<script", "src=", "href=", "http://", "https://", "@import", "<link", "<iframe",
            "<object",
        ] {
            assert!(!html.contains(banned), "the page contains {banned:?}");
        }
        assert!(
            !html.replace("url(#arrow)", "").contains("url("),
            "no external url()"
        );
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"));
        assert!(html.contains("@page { size: A4;"));
        assert_eq!(html.matches("<svg").count(), 2, "the diagram and the chart");
        assert_only_own_markup(&html);
    }

    #[test]
    fn the_chart_has_a_bar_per_hour_day_or_week() {
        let config = config();
        let hash = hash_a();
        let bars = |span: u64| {
            let mut d = Digest::new("mairie-lab", T - span, T);
            d.add(entry(
                T - HOUR_US,
                "cross_segment",
                &[(field::PACKETS, "7")],
            ));
            let r = Report {
                lang: Lang::Fr,
                config: &config,
                config_path: "c",
                config_hash: &hash,
                generated: T,
                utc_offset: &paris,
            };
            let p = Page {
                r: &r,
                d: &d,
                w: words(Lang::Fr),
            };
            let (bars, unit) = p.bars();
            let total: u64 = bars.iter().flat_map(|(_, k)| k.values()).sum();
            assert_eq!(total, 7, "every packet is in a bar");
            (bars.len(), unit, bars.first().map(|b| b.0.clone()))
        };
        assert_eq!(bars(6 * HOUR_US), (7, Unit::Hour, Some("21:00".to_owned())));
        assert_eq!(bars(30 * DAY).0, 31);
        assert_eq!(bars(30 * DAY).1, Unit::Day);
        assert_eq!(bars(365 * DAY).1, Unit::Week);
        assert_eq!(bars(365 * DAY).0, 53);
    }

    #[test]
    fn unlabelled_segments_and_english() {
        let text = visible(&page(Lang::En, story(), &hash_a()));
        assert!(text.contains(
            "✓ Le poste public France Services cannot reach le réseau de la mairie: checked on 2026-11-28 at 03:00, 24 probes, all blocked."
        ), "{text}");
        let cfg = crate::config::parse(
            &LAB.replace("label = \"le poste public France Services\"\n", ""),
            "lab.toml",
        )
        .unwrap();
        assert_eq!(name_of(Lang::Fr, &cfg, "kiosk"), "le segment « kiosk »");
        assert_eq!(name_of(Lang::En, &cfg, "kiosk"), "segment “kiosk”");
        assert_eq!(
            name_of(Lang::Fr, &cfg, "private"),
            "les adresses privées hors des segments"
        );
    }
}
