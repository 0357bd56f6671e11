//! The page's two drawings, inline SVG drawn from data: the network (segments, uplinks,
//! allowed exceptions, from the configuration) and the alerts per day (from the digest).
//! Text goes through `Out::text` like everywhere else.

use std::collections::BTreeMap;

use super::Lang;
use super::html::{Out, number};
use super::text::words;
use crate::alert::event::EventKind;
use crate::config::{Config, Proto};

/// The drawing's width in SVG units: the printable width of A4 at 96 dpi, about.
const WIDTH: f64 = 680.0;
const SEGMENTS_PER_ROW: usize = 4;
const UPLINKS_PER_ROW: usize = 4;
const SEG_W: f64 = 156.0;
const SEG_H: f64 = 84.0;
const UP_W: f64 = 156.0;
const UP_H: f64 = 54.0;
const ROUTER_W: f64 = 300.0;
const ROUTER_H: f64 = 40.0;
const LINE: f64 = 13.0;
/// Characters of a label line in a box, at 11 px.
const WRAP: usize = 24;

/// A colour per traffic kind, for the chart and its legend.
pub fn kind_colour(kind: EventKind) -> &'static str {
    match kind {
        EventKind::CrossSegment => "#d97706",
        EventKind::RouterAccess => "#2563eb",
        EventKind::SpoofedSource => "#7c3aed",
        EventKind::IsolationBreach => "#dc2626",
        EventKind::ArpSpoof => "#db2777",
        EventKind::RogueDhcp => "#0891b2",
        EventKind::RogueRa => "#0d9488",
        EventKind::VlanHopping => "#65a30d",
        _ => "#64748b",
    }
}

/// Top-left corners of `n` boxes of width `w`, `per_row` to a row, rows centred.
fn grid(n: usize, per_row: usize, w: f64, top: f64, row_h: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(n);
    let rows = n.div_ceil(per_row.max(1));
    for r in 0..rows {
        let in_row = (n - r * per_row).min(per_row);
        let slot = WIDTH / count(in_row);
        for i in 0..in_row {
            let cx = slot * (count(i) + 0.5);
            out.push((cx - w / 2.0, top + count(r) * row_h));
        }
    }
    out
}

fn count(n: usize) -> f64 {
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Greedy word wrap into at most `lines` lines of about `width` characters.
fn wrap(s: &str, width: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        match out.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => out.push(word.to_owned()),
        }
    }
    if out.len() > lines {
        out.truncate(lines);
        if let Some(last) = out.last_mut() {
            last.push('…');
        }
    }
    out
}

fn text_at(o: &mut Out, x: f64, y: f64, class: &'static str, s: &str) {
    o.raw("<text x=\"").num(x).raw("\" y=\"").num(y);
    o.raw("\" class=\"")
        .raw(class)
        .raw("\">")
        .text(s)
        .raw("</text>");
}

fn rect(o: &mut Out, (x, y): (f64, f64), w: f64, h: f64, class: &'static str) {
    o.raw("<rect x=\"")
        .num(x)
        .raw("\" y=\"")
        .num(y)
        .raw("\" width=\"")
        .num(w);
    o.raw("\" height=\"")
        .num(h)
        .raw("\" rx=\"6\" class=\"")
        .raw(class)
        .raw("\"/>");
}

fn line(o: &mut Out, a: (f64, f64), b: (f64, f64), class: &'static str) {
    o.raw("<line x1=\"")
        .num(a.0)
        .raw("\" y1=\"")
        .num(a.1)
        .raw("\" x2=\"")
        .num(b.0);
    o.raw("\" y2=\"")
        .num(b.1)
        .raw("\" class=\"")
        .raw(class)
        .raw("\"/>");
}

/// `tcp/5900`, `udp/53, 123`, `icmp`.
pub fn what(proto: Proto, ports: &std::collections::BTreeSet<u16>) -> String {
    if ports.is_empty() {
        return proto.name().to_owned();
    }
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!("{}/{}", proto.name(), list.join(", "))
}

/// The network as the configuration describes it.
pub fn diagram(o: &mut Out, lang: Lang, config: &Config, router: &str) {
    let w = words(lang);
    let ups = &config.uplinks;
    let segs = &config.segments;
    let mut y = 8.0;
    let up_pos = grid(ups.len(), UPLINKS_PER_ROW, UP_W, y + 16.0, UP_H + 14.0);
    let up_rows = ups.len().div_ceil(UPLINKS_PER_ROW);
    let router_y = if ups.is_empty() {
        y
    } else {
        y + 16.0 + count(up_rows) * (UP_H + 14.0) + 26.0
    };
    let router_x = (WIDTH - ROUTER_W) / 2.0;
    let seg_top = router_y + ROUTER_H + 46.0;
    let seg_pos = grid(segs.len(), SEGMENTS_PER_ROW, SEG_W, seg_top, SEG_H + 22.0);
    let seg_rows = segs.len().div_ceil(SEGMENTS_PER_ROW);
    let lanes_top = seg_top + count(seg_rows) * (SEG_H + 22.0) - 4.0;
    let height = lanes_top + 20.0 * count(config.allows.len()) + 8.0;

    o.raw("<svg class=\"diagram\" role=\"img\" viewBox=\"0 0 ")
        .num(WIDTH)
        .raw(" ")
        .num(height);
    o.raw("\" width=\"100%\" aria-label=\"")
        .text(w.diagram_label)
        .raw("\">");
    o.raw("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#15803d\"/></marker></defs>");

    if !ups.is_empty() {
        text_at(o, WIDTH / 2.0, y + 8.0, "t-head", w.diagram_internet);
        y = router_y;
    }
    // Links first, boxes over them.
    for (i, p) in up_pos.iter().enumerate() {
        let to = router_x + ROUTER_W * (count(i) + 1.0) / (count(ups.len()) + 1.0);
        line(o, (p.0 + UP_W / 2.0, p.1 + UP_H), (to, y), "link");
    }
    for (i, p) in seg_pos.iter().enumerate() {
        let from = router_x + ROUTER_W * (count(i) + 1.0) / (count(segs.len()) + 1.0);
        line(
            o,
            (from, router_y + ROUTER_H),
            (p.0 + SEG_W / 2.0, p.1),
            "link",
        );
    }
    for (u, p) in ups.iter().zip(&up_pos) {
        rect(o, *p, UP_W, UP_H, "uplink");
        let cx = p.0 + UP_W / 2.0;
        let title = u.label.clone().unwrap_or_else(|| u.name.to_string());
        let lines = wrap(&title, WRAP, 2);
        // One line of title sits lower, so the box looks the same either way.
        let mut ty = p.1 + if lines.len() > 1 { 16.0 } else { 22.0 };
        for l in lines {
            text_at(o, cx, ty, "t-bold", &l);
            ty += LINE;
        }
        text_at(
            o,
            cx,
            ty + 2.0,
            "t-small",
            &format!("{} · {}", u.name, u.interface),
        );
    }
    rect(o, (router_x, router_y), ROUTER_W, ROUTER_H, "router");
    text_at(
        o,
        WIDTH / 2.0,
        router_y + 25.0,
        "t-router",
        &format!("{} « {router} »", w.diagram_router),
    );
    for (s, p) in segs.iter().zip(&seg_pos) {
        rect(
            o,
            *p,
            SEG_W,
            SEG_H,
            if s.management {
                "segment admin"
            } else {
                "segment"
            },
        );
        let cx = p.0 + SEG_W / 2.0;
        let mut ty = p.1 + 16.0;
        let title = s.label.clone().unwrap_or_else(|| s.name.to_string());
        for l in wrap(&title, WRAP, 2) {
            text_at(o, cx, ty, "t-bold", &l);
            ty += LINE;
        }
        let place = match s.vlan() {
            Some(v) => format!("{} · VLAN {v}", s.name),
            None => format!("{} · {}", s.name, s.interface),
        };
        text_at(o, cx, ty, "t-small", &place);
        ty += LINE;
        text_at(o, cx, ty, "t-small", &s.address.subnet().to_string());
        ty += LINE;
        let net = match &s.uplink {
            Some(u) => match lang {
                Lang::Fr => format!("Internet : {u}"),
                Lang::En => format!("Internet: {u}"),
            },
            None => w.diagram_no_internet.to_owned(),
        };
        let net = if s.management {
            format!("{net} · {}", w.diagram_admin)
        } else {
            net
        };
        text_at(o, cx, ty, "t-small", &net);
    }
    // Allowed exceptions: one lane each under the segments.
    let centre = |name: &str| {
        segs.iter()
            .position(|s| s.name.as_str() == name)
            .map(|i| (seg_pos[i].0 + SEG_W / 2.0, seg_pos[i].1 + SEG_H))
    };
    for (i, a) in config.allows.iter().enumerate() {
        let (Some(from), Some(to)) = (centre(a.from.as_str()), centre(a.to.as_str())) else {
            continue;
        };
        let lane = lanes_top + 12.0 + 20.0 * count(i);
        let (fx, tx) = if from.0 < to.0 {
            (from.0 + 14.0, to.0 - 14.0)
        } else {
            (from.0 - 14.0, to.0 + 14.0)
        };
        o.raw("<path class=\"exception\" marker-end=\"url(#arrow)\" d=\"M")
            .num(fx)
            .raw(",")
            .num(from.1);
        o.raw(" V")
            .num(lane)
            .raw(" H")
            .num(tx)
            .raw(" V")
            .num(to.1 + 2.0)
            .raw("\"/>");
        text_at(
            o,
            (fx + tx) / 2.0,
            lane - 4.0,
            "t-exception",
            &what(a.proto, &a.ports),
        );
    }
    o.raw("</svg>");
}

/// Stacked bars: alerted packets per day and kind. `days` are (label, packets per kind).
pub fn chart(o: &mut Out, lang: Lang, days: &[(String, BTreeMap<EventKind, u64>)]) {
    let w = words(lang);
    const H: f64 = 150.0;
    const LEFT: f64 = 64.0;
    const BOTTOM: f64 = 22.0;
    const TOP: f64 = 14.0;
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let max = days
        .iter()
        .map(|(_, k)| k.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = plot_w / count(days.len().max(1));
    let bar = (slot - 2.0).max(1.0);
    let every = days.len().div_ceil(10).max(1);

    o.raw("<svg class=\"chart\" role=\"img\" viewBox=\"0 0 ")
        .num(WIDTH)
        .raw(" ")
        .num(H);
    o.raw("\" width=\"100%\" aria-label=\"")
        .text(w.chart_label)
        .raw("\">");
    line(o, (LEFT, TOP), (LEFT, TOP + plot_h), "axis");
    line(
        o,
        (LEFT, TOP + plot_h),
        (LEFT + plot_w, TOP + plot_h),
        "axis",
    );
    o.raw("<text x=\"")
        .num(LEFT - 4.0)
        .raw("\" y=\"")
        .num(TOP + 4.0)
        .raw("\" class=\"t-axis-y\">");
    o.fill(w.chart_max, &[&number(lang, max)]).raw("</text>");
    text_at(o, LEFT - 4.0, TOP + plot_h, "t-axis-y", "0");
    for (i, (label, kinds)) in days.iter().enumerate() {
        let x = LEFT + 1.0 + slot * count(i);
        let mut y = TOP + plot_h;
        for (kind, packets) in kinds {
            // Exact heights would need floats of u64: f64 holds counts up to 2^53 exactly.
            #[allow(clippy::cast_precision_loss)]
            let h = plot_h * (*packets as f64) / (max as f64);
            if h <= 0.0 {
                continue;
            }
            let h = h.max(1.0);
            y -= h;
            o.raw("<rect x=\"")
                .num(x)
                .raw("\" y=\"")
                .num(y)
                .raw("\" width=\"")
                .num(bar);
            o.raw("\" height=\"")
                .num(h)
                .raw("\" fill=\"")
                .raw(kind_colour(*kind))
                .raw("\"/>");
        }
        if i % every == 0 {
            text_at(o, x + bar / 2.0, H - 6.0, "t-axis-x", label);
        }
    }
    o.raw("</svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words_into_lines() {
        assert_eq!(
            wrap("le poste public France Services", 24, 2),
            ["le poste public France", "Services"]
        );
        assert_eq!(wrap("a b c d e f", 3, 2), ["a b", "c d…"]);
        assert!(wrap("", 10, 2).is_empty());
    }

    #[test]
    fn grid_centres_rows() {
        let p = grid(5, 4, 100.0, 10.0, 50.0);
        assert_eq!(p.len(), 5);
        assert_eq!(p[0].1, 10.0);
        assert_eq!(
            p[4],
            (WIDTH / 2.0 - 50.0, 60.0),
            "the second row's one box is centred"
        );
    }
}
