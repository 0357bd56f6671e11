//! The one way text gets into the report: `Out`, a buffer whose only door for a value
//! that is not a `&'static str` of this crate is `text`, which escapes it. Journal entries
//! carry attacker-chosen strings (addresses, names); nothing can reach the page as markup.
//! Also the formatting of numbers and local times, per language.

use std::fmt::Write as _;

use super::Lang;

/// The report being written.
#[derive(Debug, Default)]
pub struct Out {
    buf: String,
}

impl Out {
    pub fn new() -> Out {
        Out::default()
    }

    /// Markup written by this crate. `'static` on purpose: a value read from the journal
    /// or the configuration can never be passed here.
    pub fn raw(&mut self, markup: &'static str) -> &mut Out {
        self.buf.push_str(markup);
        self
    }

    /// Text, escaped for an element's content or a quoted attribute value. Control
    /// characters other than newline and tab are dropped.
    pub fn text(&mut self, s: impl AsRef<str>) -> &mut Out {
        for c in s.as_ref().chars() {
            match c {
                '&' => self.buf.push_str("&amp;"),
                '<' => self.buf.push_str("&lt;"),
                '>' => self.buf.push_str("&gt;"),
                '"' => self.buf.push_str("&quot;"),
                '\'' => self.buf.push_str("&#39;"),
                '\n' | '\t' => self.buf.push(c),
                c if c.is_control() => {}
                c => self.buf.push(c),
            }
        }
        self
    }

    /// A number (coordinates, sizes), as SVG and CSS read it.
    pub fn num(&mut self, n: impl Into<f64>) -> &mut Out {
        let n: f64 = n.into();
        if n.fract() == 0.0 && n.abs() < 1e15 {
            let _ = write!(self.buf, "{n:.0}");
        } else {
            let _ = write!(self.buf, "{n:.1}");
        }
        self
    }

    /// A static template with `{0}`, `{1}`... filled by escaped values: sentences of the
    /// report, whose markup is this crate's and whose values are text.
    pub fn fill(&mut self, template: &'static str, args: &[&str]) -> &mut Out {
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let index = rest[open + 1..open + close].parse::<usize>().ok();
            match index.and_then(|i| args.get(i)) {
                Some(value) => {
                    self.push_static(&rest[..open]);
                    self.text(value);
                }
                None => self.push_static(&rest[..open + close + 1]),
            }
            rest = &rest[open + close + 1..];
        }
        self.push_static(rest);
        self
    }

    /// A slice of a `'static` template.
    fn push_static(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// `50 009` in French (narrow no-break space), `50,009` in English.
pub fn number(lang: Lang, n: u64) -> String {
    let digits = n.to_string();
    let sep = match lang {
        Lang::Fr => '\u{202f}',
        Lang::En => ',',
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// A moment in local time: microseconds since the epoch and the offset from UTC that
/// applied then, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
}

impl Civil {
    pub fn at(usec: u64, offset_secs: i32) -> Civil {
        let secs = i64::try_from(usec / 1_000_000).unwrap_or(i64::MAX / 2) + i64::from(offset_secs);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let small = |v: i64| u8::try_from(v).unwrap_or(0);
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: small(month),
            day: small(day),
            hour: small(rem / 3600),
            minute: small(rem / 60 % 60),
        }
    }

    /// `28/11/2026` or `2026-11-28`.
    pub fn date(&self, lang: Lang) -> String {
        match lang {
            Lang::Fr => format!("{:02}/{:02}/{}", self.day, self.month, self.year),
            Lang::En => format!("{}-{:02}-{:02}", self.year, self.month, self.day),
        }
    }

    /// `28/11` or `11-28`: a day within the period, for the chart.
    pub fn day_month(&self, lang: Lang) -> String {
        match lang {
            Lang::Fr => format!("{:02}/{:02}", self.day, self.month),
            Lang::En => format!("{:02}-{:02}", self.month, self.day),
        }
    }

    /// `03:00`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }
}

/// `UTC+01:00`.
pub fn utc_offset(offset_secs: i32) -> String {
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let a = offset_secs.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_raw_only_takes_static_markup() {
        let mut o = Out::new();
        o.raw("<p>")
            .text("<script>alert('x')</script> & \"q\"\u{7}")
            .raw("</p>");
        assert_eq!(
            o.finish(),
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</p>"
        );
    }

    #[test]
    fn templates_escape_their_values_and_keep_their_markup() {
        let mut o = Out::new();
        o.fill("<b>{0}</b> a {1} {2} {x}", &["<i>", "b&c"]);
        assert_eq!(o.finish(), "<b>&lt;i&gt;</b> a b&amp;c {2} {x}");
    }

    #[test]
    fn numbers_and_times_per_language() {
        assert_eq!(number(Lang::En, 50_009), "50,009");
        assert_eq!(number(Lang::Fr, 1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(number(Lang::Fr, 999), "999");
        assert_eq!(number(Lang::En, 0), "0");
        // 2026-11-28T02:00:00Z, in Paris (UTC+1) 03:00.
        let t = 1_795_831_200_000_000;
        let c = Civil::at(t, 3600);
        assert_eq!(c.date(Lang::Fr), "28/11/2026");
        assert_eq!(c.date(Lang::En), "2026-11-28");
        assert_eq!(c.time(), "03:00");
        assert_eq!(Civil::at(t, -3 * 3600).date(Lang::Fr), "27/11/2026");
        assert_eq!(utc_offset(3600), "UTC+01:00");
        assert_eq!(utc_offset(-9000), "UTC-02:30");
        let mut o = Out::new();
        o.num(12).raw(" ").num(2.5);
        assert_eq!(o.finish(), "12 2.5");
    }
}
