//! `report.html`: one self-contained file — inline CSS and inline SVG, no scripts, no
//! network — that reads the same as `report.md`.

use crate::report::{
    charts::Chart,
    doc::{Align, Block},
};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:0.9em;display:block;overflow-x:auto}th,td{border:1px solid #ccc;padding:0.25em 0.6em;vertical-align:top}\
th{background:#f3f3f3}td.r,th.r{text-align:right}blockquote{border-left:4px solid #bbb;margin:1em 0;padding:0.2em 1em;color:#444;background:#fafafa}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:0.9em;color:#555}\
code{background:#f2f2f2;padding:0 0.2em}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}";

pub fn render(title: &str, blocks: &[Block], charts: &[Chart]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n", escape(title)));
    for b in blocks {
        match b {
            Block::Heading { level, id, text } => {
                let l = level.clamp(&1, &6);
                out.push_str(&format!("<h{l} id=\"{id}\">{}</h{l}>\n", inline(text)));
            }
            Block::Para(t) => out.push_str(&format!("<p>{}</p>\n", inline(t))),
            Block::Note(t) => {
                out.push_str(&format!("<blockquote><p>{}</p></blockquote>\n", inline(t).replace('\n', "<br>\n")))
            }
            Block::Bullets(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Chart { file, title } => {
                out.push_str("<figure>\n");
                match charts.iter().find(|c| c.file == *file) {
                    Some(c) => {
                        let svg = c.svg.trim_start();
                        let svg = match svg.strip_prefix("<?xml") {
                            Some(rest) => rest.split_once("?>").map_or(svg, |(_, s)| s.trim_start()),
                            None => svg,
                        };
                        out.push_str(svg.trim_end());
                        out.push('\n');
                    }
                    None => out.push_str(&format!("<p>(chart {} missing)</p>\n", escape(file))),
                }
                out.push_str(&format!(
                    "<figcaption>{} (<code>{}</code>)</figcaption>\n</figure>\n",
                    inline(title),
                    escape(file)
                ));
            }
            Block::Table { head, align, rows } => {
                let class = |i: usize| if align.get(i) == Some(&Align::Right) { " class=\"r\"" } else { "" };
                out.push_str("<table>\n<thead><tr>");
                for (i, h) in head.iter().enumerate() {
                    out.push_str(&format!("<th{}>{}</th>", class(i), inline(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        out.push_str(&format!("<td{}>{}</td>", class(i), inline(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escape, then turn `**bold**` and `` `code` `` into tags, and `[text](#id)` into links.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut bold = false;
    while let Some(i) = rest.find(['*', '`', '[']) {
        out.push_str(&escape(&rest[..i]));
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = after;
        } else if let Some(after) = tail.strip_prefix('`') {
            match after.find('`') {
                Some(end) => {
                    out.push_str(&format!("<code>{}</code>", escape(&after[..end])));
                    rest = &after[end + 1..];
                }
                None => {
                    out.push('`');
                    rest = after;
                }
            }
        } else if let Some((text, href, after)) = link(tail) {
            out.push_str(&format!("<a href=\"{}\">{}</a>", escape(href), escape(text)));
            rest = after;
        } else {
            out.push_str(&escape(&tail[..1]));
            rest = &tail[1..];
        }
    }
    out.push_str(&escape(rest));
    if bold {
        out.push_str("</strong>");
    }
    out
}

/// `[text](href)` at the start of `s`.
fn link(s: &str) -> Option<(&str, &str, &str)> {
    let inner = s.strip_prefix('[')?;
    let (text, after) = inner.split_once("](")?;
    let (href, rest) = after.split_once(')')?;
    (!text.contains(['[', ']']) && !href.contains(char::is_whitespace)).then_some((text, href, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_is_escaped_and_converted() {
        assert_eq!(
            inline("a < b **c** `x<y>` [s](#scaling) *"),
            "a &lt; b <strong>c</strong> <code>x&lt;y&gt;</code> <a href=\"#scaling\">s</a> *"
        );
        assert_eq!(inline("**open"), "<strong>open</strong>");
        assert_eq!(inline("[not a link"), "[not a link");
    }
}
