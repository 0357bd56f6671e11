//! The manual: man pages and shell completions, written by `cloison manpages` and
//! `cloison completions` at build time (debian/build). The pages of the program come from
//! the definition the binary parses (`cli`), with their synopsis as typed (the global
//! `-c` shown), EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO; cloison.toml(5) comes from
//! docs/config.md, turned into roff here, so the two never say different things. Every
//! page named in a SEE ALSO is one that ships, or one of a package cloison runs with.

use clap::CommandFactory;

use crate::cli::{Cli, exit_statuses};

/// The configuration reference, the source of cloison.toml(5).
const CONFIG_MD: &str = include_str!("../../../docs/config.md");

/// `(path under the man directory, roff)`: `man8/cloison.8`, `man8/cloison-check.8`...,
/// `man5/cloison.toml.5`.
pub fn pages() -> Vec<(String, String)> {
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    let version = top.get_version().unwrap_or_default().to_owned();
    let subs: Vec<clap::Command> = top
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let names: Vec<String> = subs.iter().map(|s| s.get_name().to_owned()).collect();
    let mut pages = vec![(
        "man8/cloison.8".to_owned(),
        main_page(&top, &subs, &version),
    )];
    for sub in &subs {
        let name = sub.get_name();
        pages.push((
            format!("man8/cloison-{name}.8"),
            command_page(&top, sub, &names, &version),
        ));
    }
    pages.push((
        "man5/cloison.toml.5".to_owned(),
        config_page(CONFIG_MD, &version),
    ));
    pages
}

/// `(path, script)`: `bash/cloison` and `zsh/_cloison`, for the commands an admin types
/// (the internal ones, hidden from `--help`, are left out).
pub fn completions() -> Vec<(String, Vec<u8>)> {
    use clap_complete::{Shell, generate};
    let full = Cli::command();
    let mut public = clap::Command::new("cloison")
        .version(full.get_version().unwrap_or_default().to_owned())
        .propagate_version(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    [(Shell::Bash, "bash/cloison"), (Shell::Zsh, "zsh/_cloison")]
        .into_iter()
        .map(|(shell, path)| {
            let mut out = Vec::new();
            generate(shell, &mut public, "cloison", &mut out);
            (path.to_owned(), out)
        })
        .collect()
}

/// Text for roff: backslashes escaped, hyphens that start a word (`-c`, `--json`) as
/// minus signs, characters beyond ASCII as named glyphs.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' if !prev.is_some_and(|p| p.is_alphanumeric()) => out.push_str("\\-"),
            c if !c.is_ascii() => out.push_str(&format!("\\[u{:04X}]", u32::from(c))),
            c => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// A text line that roff must not take for a request.
fn line(s: &str) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}\n")
    } else {
        format!("{s}\n")
    }
}

fn bold(s: &str) -> String {
    format!("\\fB{}\\fR", esc(s))
}

fn title(name: &str, section: &str, version: &str) -> String {
    format!(
        ".TH \"{}\" \"{section}\" \"\" \"cloison {version}\" \"{}\"\n",
        name.to_uppercase(),
        if section == "5" {
            "File Formats"
        } else {
            "System Administration"
        }
    )
}

fn paragraphs(text: &str) -> String {
    let mut out = String::new();
    for p in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        out.push_str(".PP\n");
        out.push_str(&line(&inline(
            &p.split_whitespace().collect::<Vec<_>>().join(" "),
        )));
    }
    out
}

/// `[-c PATH] check [--json]`: an option as a synopsis shows it.
fn synopsis_arg(arg: &clap::Arg) -> Option<String> {
    if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version") {
        return None;
    }
    let flag = match (arg.get_long(), arg.get_short()) {
        (_, Some(s)) => bold(&format!("-{s}")),
        (Some(l), None) => bold(&format!("--{l}")),
        (None, None) => {
            let v = arg.get_value_names().and_then(|v| v.first().cloned());
            return Some(format!(
                "\\fI{}\\fR",
                esc(v.as_deref().unwrap_or(arg.get_id().as_str()))
            ));
        }
    };
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    Some(match arg.get_value_names().and_then(|v| v.first()) {
        Some(v) if takes_value => format!("[{flag} \\fI{}\\fR]", esc(v)),
        _ => format!("[{flag}]"),
    })
}

fn globals(top: &clap::Command) -> Vec<String> {
    top.get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(synopsis_arg)
        .collect()
}

fn options_section(cmd: &clap::Command) -> String {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render_options_section(&mut out)
        .expect("rendering to memory cannot fail");
    String::from_utf8_lossy(&out).into_owned()
}

fn exit_section(command: &str) -> String {
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in exit_statuses(command) {
        out.push_str(&format!(".TP\n\\fB{code}\\fR\n{}", line(&esc(meaning))));
    }
    out
}

/// `(name, meaning)` pairs as a tagged list under `heading`.
fn tagged(heading: &str, items: &[(&str, String)]) -> String {
    let mut out = format!(".SH {heading}\n");
    for (name, meaning) in items {
        out.push_str(&format!(".TP\n{}\n{}", bold(name), line(&esc(meaning))));
    }
    out
}

fn environment(command: Option<&str>) -> String {
    let mut items = vec![
        (
            "CLOISON_CONFIG",
            "the configuration file when -c is not given".to_owned(),
        ),
        (
            "CLOISON_LOG",
            "what cloison logs (a tracing filter such as info, debug or cloison=debug; default info)"
                .to_owned(),
        ),
    ];
    if matches!(command, None | Some("run")) {
        items.push((
            "CLOISON_STATE_DIR",
            "where the last configuration that applied is kept (else systemd's STATE_DIRECTORY, else /var/lib/cloison)".to_owned(),
        ));
    }
    if matches!(
        command,
        None | Some("run" | "status" | "reload" | "confirm")
    ) {
        items.push((
            "CLOISON_RUNTIME_DIR",
            "where the daemon's control socket is (else systemd's RUNTIME_DIRECTORY, else /run/cloison)".to_owned(),
        ));
    }
    tagged("ENVIRONMENT", &items)
}

fn files(command: Option<&str>) -> String {
    let mut items = vec![(
        "/etc/cloison/cloison.toml",
        "the configuration (see cloison.toml(5)); the package installs a commented example there, which cloison run and cloison apply refuse until it is edited".to_owned(),
    )];
    if matches!(
        command,
        None | Some("run" | "status" | "reload" | "confirm")
    ) {
        items.push((
            "/run/cloison/control.sock",
            "the running daemon's control socket".to_owned(),
        ));
    }
    if matches!(command, None | Some("run")) {
        items.push((
            "/var/lib/cloison/last-good.toml",
            "the last configuration that applied, used when the file is refused at start-up"
                .to_owned(),
        ));
        items.push((
            "/usr/lib/systemd/system/cloison.service",
            "the unit that runs cloison run at boot, before the network is configured".to_owned(),
        ));
        items.push((
            "/usr/lib/systemd/catalog/cloison.catalog",
            "what each alert means, shown by journalctl -x".to_owned(),
        ));
    }
    if command.is_none() {
        items.push((
            "/usr/share/doc/cloison/",
            "the documentation (README.md, config.md, alerts.md, operations.md...) and more example configurations in examples/".to_owned(),
        ));
    }
    tagged("FILES", &items)
}

fn see_also(pages: &[String]) -> String {
    format!(".SH \"SEE ALSO\"\n{}\n", pages.join(",\n"))
}

/// `name(section)`, never hyphenated across lines.
fn page_ref(name: &str, section: u8) -> String {
    format!("\\fB\\%{}\\fR({section})", esc(name))
}

/// A clap `about`, which has lost its final period, as a sentence.
fn sentence(about: Option<&clap::builder::StyledStr>) -> String {
    let mut s = about.map(ToString::to_string).unwrap_or_default();
    if !s.is_empty() && !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn main_page(top: &clap::Command, subs: &[clap::Command], version: &str) -> String {
    let mut out = title("cloison", "8", version);
    out.push_str(".SH NAME\n");
    out.push_str(&line(&format!(
        "cloison \\- {}",
        esc(&top.get_about().map(ToString::to_string).unwrap_or_default())
    )));
    out.push_str(".SH SYNOPSIS\n");
    out.push_str(&line(&format!(
        "\\fBcloison\\fR {} \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        globals(top).join(" ")
    )));
    out.push_str(".SH DESCRIPTION\n");
    out.push_str(&paragraphs(
        &top.get_long_about()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ));
    out.push_str(&options_section(top));
    out.push_str(".SH COMMANDS\n");
    for sub in subs {
        let name = sub.get_name();
        out.push_str(&format!(
            ".TP\n\\fBcloison {}\\fR\n{}",
            esc(name),
            line(&format!(
                "{} See {}.",
                inline(&sentence(sub.get_about())),
                page_ref(&format!("cloison-{name}"), 8)
            ))
        ));
    }
    out.push_str(&exit_section(""));
    out.push_str(&environment(None));
    out.push_str(&files(None));
    let mut refs = vec![page_ref("cloison.toml", 5)];
    refs.extend(
        subs.iter()
            .map(|s| page_ref(&format!("cloison-{}", s.get_name()), 8)),
    );
    refs.extend([
        page_ref("nft", 8),
        page_ref("systemctl", 1),
        page_ref("journalctl", 1),
    ]);
    out.push_str(&see_also(&refs));
    out
}

fn command_page(
    top: &clap::Command,
    sub: &clap::Command,
    names: &[String],
    version: &str,
) -> String {
    let name = sub.get_name();
    let mut out = title(&format!("cloison-{name}"), "8", version);
    out.push_str(".SH NAME\n");
    out.push_str(&line(&format!(
        "cloison\\-{} \\- {}",
        esc(name),
        esc(&sub.get_about().map(ToString::to_string).unwrap_or_default())
    )));
    out.push_str(".SH SYNOPSIS\n");
    let own: Vec<String> = sub
        .get_arguments()
        .filter(|a| !a.is_global_set())
        .filter_map(synopsis_arg)
        .collect();
    let synopsis = format!(
        "\\fBcloison\\fR {} \\fB{}\\fR {}",
        globals(top).join(" "),
        esc(name),
        own.join(" ")
    );
    out.push_str(&line(synopsis.trim_end()));
    out.push_str(".SH DESCRIPTION\n");
    out.push_str(&paragraphs(
        &sub.get_long_about()
            .or_else(|| sub.get_about())
            .map(ToString::to_string)
            .unwrap_or_default(),
    ));
    out.push_str(&options_section(sub));
    out.push_str(&exit_section(name));
    out.push_str(&environment(Some(name)));
    out.push_str(&files(Some(name)));
    let mut refs = vec![page_ref("cloison", 8), page_ref("cloison.toml", 5)];
    let related: &[&str] = match name {
        "check" => &["plan"],
        "plan" => &["check", "apply"],
        "apply" => &["plan", "status", "run"],
        "status" => &["run", "apply"],
        "run" => &["status", "reload", "confirm"],
        "reload" => &["confirm", "run", "status"],
        "confirm" => &["reload"],
        _ => &[],
    };
    refs.extend(
        related
            .iter()
            .filter(|r| names.iter().any(|n| n == *r))
            .map(|r| page_ref(&format!("cloison-{r}"), 8)),
    );
    if matches!(name, "plan" | "apply" | "status") {
        refs.push(page_ref("nft", 8));
    }
    if matches!(name, "run" | "reload") {
        refs.extend([page_ref("systemctl", 1), page_ref("journalctl", 1)]);
    }
    out.push_str(&see_also(&refs));
    out
}

/// cloison.toml(5) from docs/config.md: its first paragraphs are the DESCRIPTION, each
/// `## Heading` a section (the TOML tables, `## \`[router]\``..., subsections of TABLES),
/// lists, tables of keys (as tagged paragraphs: the key, its default, its meaning) and
/// code blocks as roff has them.
pub fn config_page(markdown: &str, version: &str) -> String {
    let mut out = title("cloison.toml", "5", version);
    out.push_str(".SH NAME\n");
    out.push_str(
        "cloison.toml \\- the configuration of cloison, the town hall's segment isolation\n",
    );
    out.push_str(".SH SYNOPSIS\n");
    out.push_str("/etc/cloison/cloison.toml\n");
    out.push_str(".SH DESCRIPTION\n");
    let mut tables_open = false;
    let mut code = false;
    let mut paragraph: Vec<String> = Vec::new();
    let mut item: Option<Vec<String>> = None;
    let mut columns: Vec<String> = Vec::new();
    let flush = |out: &mut String, paragraph: &mut Vec<String>, item: &mut Option<Vec<String>>| {
        if !paragraph.is_empty() {
            out.push_str(".PP\n");
            out.push_str(&line(&inline(&paragraph.join(" "))));
            paragraph.clear();
        }
        if let Some(words) = item.take() {
            out.push_str(".IP \\(bu 2\n");
            out.push_str(&line(&inline(&words.join(" "))));
        }
    };
    for raw in markdown.lines() {
        if code {
            if raw.trim_start().starts_with("```") {
                out.push_str(".fi\n.RE\n");
                code = false;
            } else {
                out.push_str(&line(&esc(raw)));
            }
            continue;
        }
        let text = raw.trim_end();
        if text.trim_start().starts_with("```") {
            flush(&mut out, &mut paragraph, &mut item);
            out.push_str(".PP\n.RS 4\n.nf\n");
            code = true;
        } else if text.starts_with("# ") {
            // The title: the NAME section says it.
        } else if let Some(heading) = text.strip_prefix("## ") {
            flush(&mut out, &mut paragraph, &mut item);
            columns.clear();
            if heading.starts_with('`') {
                if !tables_open {
                    out.push_str(".SH TABLES\n");
                    tables_open = true;
                }
                out.push_str(&format!(".SS {}\n", inline(heading)));
            } else {
                out.push_str(&format!(
                    ".SH \"{}\"\n",
                    esc(&heading.replace('`', "").to_uppercase())
                ));
            }
        } else if text.starts_with('|') {
            flush(&mut out, &mut paragraph, &mut item);
            let cells: Vec<String> = text
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|x| x == '-' || x == ':'))
            {
                continue;
            }
            if columns.is_empty() {
                columns = cells;
                continue;
            }
            let key = inline(&cells[0]);
            let meaning = inline(cells.last().map_or("", String::as_str));
            let default = columns
                .iter()
                .position(|c| c == "default")
                .and_then(|i| cells.get(i))
                .filter(|d| !d.is_empty() && *d != "-");
            out.push_str(".TP\n");
            match default.map(String::as_str) {
                Some("required") => out.push_str(&line(&format!("{key} (required)"))),
                Some(d) => out.push_str(&line(&format!("{key} (default: {})", inline(d)))),
                None => out.push_str(&line(&key)),
            }
            out.push_str(&line(&meaning));
        } else if let Some(rest) = text.strip_prefix("- ") {
            flush(&mut out, &mut paragraph, &mut item);
            item = Some(vec![rest.to_owned()]);
        } else if text.trim().is_empty() {
            flush(&mut out, &mut paragraph, &mut item);
            columns.clear();
        } else if let Some(words) = item.as_mut() {
            words.push(text.trim().to_owned());
        } else {
            paragraph.push(text.trim().to_owned());
        }
    }
    flush(&mut out, &mut paragraph, &mut item);
    out.push_str(&files(Some("toml")));
    out.push_str(&see_also(&[
        page_ref("cloison", 8),
        page_ref("cloison-check", 8),
        page_ref("cloison-plan", 8),
        page_ref("cloison-run", 8),
    ]));
    out
}

/// Markdown inline text as roff: `code` and **bold** in bold, links as their text (a link
/// to another page of the documentation by its file name as the path it is installed at).
fn inline(md: &str) -> String {
    // Links first: `[text](target)` keeps its text.
    let mut text = String::with_capacity(md.len());
    let mut rest = md;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        text.push_str(&rest[..open]);
        let label = &rest[open + 1..close];
        let target = rest[close + 2..end].split('#').next().unwrap_or("");
        let file = target.rsplit('/').next().unwrap_or(target);
        if file.ends_with(".md") && label.trim_matches('`') == file {
            text.push_str(&format!("`/usr/share/doc/cloison/{file}`"));
        } else {
            text.push_str(label);
        }
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&bold(part));
        } else {
            for (j, plain) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    out.push_str(&bold(plain));
                } else {
                    out.push_str(&esc(plain));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_leave_the_internal_commands_out() {
        for (path, script) in completions() {
            let script = String::from_utf8(script).unwrap();
            assert!(
                script.contains("status") && script.contains("--config"),
                "{path}"
            );
            for internal in ["configured", "manpages", "completions"] {
                assert!(!script.contains(internal), "{path} offers {internal}");
            }
        }
    }

    #[test]
    fn every_page_a_page_names_ships() {
        let pages = pages();
        let shipped: Vec<String> = pages
            .iter()
            .map(|(path, _)| {
                let file = path.rsplit('/').next().unwrap_or(path);
                let (name, section) = file.rsplit_once('.').unwrap_or((file, ""));
                format!("{name}({section})")
            })
            .collect();
        assert!(
            shipped.contains(&"cloison.toml(5)".to_owned()),
            "{shipped:?}"
        );
        for (path, roff) in &pages {
            let text = roff
                .replace("\\fB", "")
                .replace("\\fR", "")
                .replace("\\%", "")
                .replace("\\-", "-");
            for (at, _) in text.match_indices("cloison") {
                let rest = &text[at..];
                let Some(paren) = rest.find('(') else {
                    continue;
                };
                let name = &rest[..paren];
                if name.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')) {
                    continue;
                }
                let Some(section) = rest[paren + 1..].split(')').next() else {
                    continue;
                };
                if section.len() != 1 || !section.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                let r = format!("{name}({section})");
                assert!(
                    shipped.contains(&r),
                    "{path} names {r}, which does not ship"
                );
            }
            assert!(!roff.contains("cloison-help"), "{path}");
        }
    }

    #[test]
    fn each_command_page_shows_the_global_option_and_its_exit_status() {
        for (path, roff) in pages() {
            if path.starts_with("man8/cloison-") {
                let synopsis = roff
                    .split(".SH SYNOPSIS\n")
                    .nth(1)
                    .and_then(|s| s.lines().next())
                    .unwrap_or("");
                assert!(
                    synopsis.starts_with("\\fBcloison\\fR [\\fB\\-c\\fR \\fIPATH\\fR] ["),
                    "{path}: {synopsis}"
                );
            }
            for section in [".SH \"SEE ALSO\"", ".SH FILES"] {
                assert!(roff.contains(section), "{path} lacks {section}");
            }
            if path.starts_with("man8/") {
                assert!(roff.contains(".SH \"EXIT STATUS\""), "{path}");
            }
        }
        let plan = pages()
            .into_iter()
            .find(|(p, _)| p == "man8/cloison-plan.8")
            .unwrap()
            .1;
        assert!(
            plan.contains(
                "\\fBcloison\\fR [\\fB\\-c\\fR \\fIPATH\\fR] [\\fB\\-\\-state-dir\\fR \\fIDIR\\fR] \
                 [\\fB\\-\\-runtime-dir\\fR \\fIDIR\\fR] \\fBplan\\fR [\\fB\\-\\-json\\fR]\n"
            ),
            "{plan}"
        );
    }

    #[test]
    fn the_configuration_page_has_every_key() {
        let page = config_page(CONFIG_MD, "0");
        for key in [
            "ssh_port",
            "interface",
            "gateway6",
            "masquerade",
            "vlan",
            "address6",
            "services",
            "management",
            "proto",
            "ports",
            "summary_every",
            "max_per_minute",
            "repair",
        ] {
            assert!(
                page.contains(&format!(".TP\n\\fB{}\\fR", esc(key)))
                    || page.contains(&format!("\\fB{}\\fR", esc(key))),
                "{key}"
            );
        }
        assert!(
            page.contains(".SS \\fB[segments.NAME]\\fR (one table per segment)\n"),
            "{page}"
        );
        assert!(
            page.contains(".TP\n\\fBmasquerade\\fR (default: \\fBtrue\\fR)\n")
                && page.contains(".TP\n\\fBinterface\\fR (required)\n")
                && page.contains("\\fB/usr/share/doc/cloison/performance.md\\fR"),
            "{page}"
        );
    }
}
