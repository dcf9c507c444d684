//! `report.html`: one self-contained file — inline CSS and inline SVG, no scripts, no
//! network — that reads the same as `report.md`.

use std::ops::Range;

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
    // All headings first: a cross-reference may point down the page.
    let inline = Inline::new(blocks);
    let inline = |s: &str| inline.html(s);
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

/// The Markdown's inline markup as HTML: `` `code` ``, `**strong**`, `*emphasis*` and
/// `[text](href)`, everything else escaped. A delimiter that Markdown would print (a lone `*`,
/// an unmatched backtick) stays literal text. Spans are parsed as nested ranges of the source,
/// so every tag is closed inside the tag it opened in.
struct Inline<'a> {
    /// Heading text → id: the full text first, then the short name before a colon, so both
    /// "see *Limits of this run*" and "see *Session synchronisation*" find their section.
    sections: Vec<(&'a str, &'a str)>,
}

impl<'a> Inline<'a> {
    fn new(blocks: &'a [Block]) -> Self {
        let headings = || {
            blocks.iter().filter_map(|b| match b {
                Block::Heading { id, text, .. } => Some((text.as_str(), *id)),
                _ => None,
            })
        };
        let short = headings().filter_map(|(text, id)| Some((text.split_once(": ")?.0, id)));
        Self { sections: headings().chain(short).collect() }
    }

    fn html(&self, s: &str) -> String {
        let mut out = String::new();
        self.push(s, 0..s.len(), true, &mut out);
        out
    }

    /// Render `s[range]`, looking at the characters around it (in `s`) to decide whether a
    /// `*` opens or closes. `links`: false inside an `<a>`, which must not contain another.
    fn push(&self, s: &str, range: Range<usize>, links: bool, out: &mut String) {
        let (mut done, mut at) = (range.start, range.start);
        while let Some(found) = s[at..range.end].find(['*', '`', '[']) {
            at += found;
            let run = if s.as_bytes()[at] == b'[' { 1 } else { run_len(s, at, range.end) };
            let span = match s.as_bytes()[at] {
                b'`' => code_span(s, at, run, range.end).map(Span::Code),
                b'*' => emphasis(s, at, run, range.end).map(Span::Emphasis),
                _ => link(&s[at..range.end]).map(|(text, href)| Span::Link(at + 1..at + 1 + text.len(), href)),
            };
            let Some(span) = span else {
                at += run;
                continue;
            };
            out.push_str(&escape(&s[done..at]));
            done = match span {
                Span::Code(inner) => {
                    out.push_str(&format!("<code>{}</code>", escape(&s[inner.clone()])));
                    inner.end + run
                }
                Span::Emphasis(inner) => {
                    let (open, close) = if run == 2 { ("<strong>", "</strong>") } else { ("<em>", "</em>") };
                    // Only *emphasis* cross-references: **strong** text leads a bullet, it names no section.
                    let section = (links && run == 1).then(|| self.section(&s[inner.clone()])).flatten();
                    if let Some(id) = section {
                        out.push_str(&format!("<a href=\"#{}\">", escape(id)));
                    }
                    out.push_str(open);
                    self.push(s, inner.clone(), links && section.is_none(), out);
                    out.push_str(close);
                    if section.is_some() {
                        out.push_str("</a>");
                    }
                    inner.end + run
                }
                Span::Link(text, href) => {
                    // Inside another link only the text: anchors do not nest.
                    if links {
                        out.push_str(&format!("<a href=\"{}\">", escape(href)));
                    }
                    self.push(s, text.clone(), false, out);
                    if links {
                        out.push_str("</a>");
                    }
                    text.end + "](".len() + href.len() + ")".len()
                }
            };
            at = done;
        }
        out.push_str(&escape(&s[done..range.end]));
    }

    fn section(&self, text: &str) -> Option<&'a str> {
        self.sections.iter().find(|(t, _)| *t == text).map(|(_, id)| *id)
    }
}

/// An inline element found in the source: the byte range of its content, and for a link its href.
enum Span<'a> {
    Code(Range<usize>),
    Emphasis(Range<usize>),
    Link(Range<usize>, &'a str),
}

/// How many times the character at `at` (`*` or a backtick) repeats from there, before `end`.
fn run_len(s: &str, at: usize, end: usize) -> usize {
    s.as_bytes()[at..end].iter().take_while(|&&b| b == s.as_bytes()[at]).count()
}

/// The content of a code span opened by the `run` backticks at `at`: up to the next run of
/// exactly as many (CommonMark), taken literally.
fn code_span(s: &str, at: usize, run: usize, end: usize) -> Option<Range<usize>> {
    let mut from = at + run;
    while let Some(found) = s[from..end].find('`') {
        let start = from + found;
        let len = run_len(s, start, end);
        if len == run {
            return Some(at + run..start);
        }
        from = start + len;
    }
    None
}

/// The content of `*emphasis*` or `**strong**` opened by the `run` stars at `at`, closed by
/// the next run of as many that can close; code spans inside are skipped, a run of the other
/// length belongs to the content. Opening and closing follow CommonMark's flanking rules, so
/// "2 * 3" or a trailing "*" stays text.
fn emphasis(s: &str, at: usize, run: usize, end: usize) -> Option<Range<usize>> {
    if !(1..=2).contains(&run) || !flanking(s, at, at + run).0 {
        return None;
    }
    let mut from = at + run;
    while let Some(found) = s[from..end].find(['*', '`']) {
        let start = from + found;
        let len = run_len(s, start, end);
        if s.as_bytes()[start] == b'`' {
            from = code_span(s, start, len, end).map_or(start + len, |inner| inner.end + len);
        } else if len == run && start > at + run && flanking(s, start, start + len).1 {
            return Some(at + run..start);
        } else {
            from = start + len;
        }
    }
    None
}

/// Whether the delimiter run `s[start..end]` is (left-flanking, right-flanking): it can open
/// if text follows it and it is not punctuation glued to a word before; closing mirrors that.
fn flanking(s: &str, start: usize, end: usize) -> (bool, bool) {
    let before = s[..start].chars().next_back();
    let after = s[end..].chars().next();
    let space = |c: Option<char>| c.is_none_or(char::is_whitespace);
    // CommonMark counts Unicode punctuation and symbols; non-ASCII, non-alphanumeric is close.
    let punct = |c: Option<char>| {
        c.is_some_and(|c| c.is_ascii_punctuation() || !(c.is_ascii() || c.is_alphanumeric() || c.is_whitespace()))
    };
    let left = !space(after) && (!punct(after) || space(before) || punct(before));
    let right = !space(before) && (!punct(before) || space(after) || punct(after));
    (left, right)
}

/// `[text](href)` at the start of `s`: the text and the href.
fn link(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('[')?;
    let (text, after) = inner.split_once("](")?;
    let (href, _) = after.split_once(')')?;
    (!text.contains(['[', ']']) && !href.contains(char::is_whitespace)).then_some((text, href))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Vec<Block> {
        let h = |id, text: &str| Block::Heading { level: 2, id, text: text.into() };
        vec![
            h("limits", "Limits of this run"),
            h("sync", "Session synchronisation: behind round-robin"),
            h("odd", "Odd [x](#y)"),
        ]
    }

    /// Each input against the HTML it must give.
    fn check(cases: &[(&str, &str)]) {
        let blocks = blocks();
        let inline = Inline::new(&blocks);
        for (markdown, html) in cases {
            assert_eq!(inline.html(markdown), *html, "{markdown}");
        }
    }

    #[test]
    fn inline_markup_is_escaped_and_converted() {
        check(&[
            (
                "a < b **c** `x<y>` [s](#scaling) *",
                "a &lt; b <strong>c</strong> <code>x&lt;y&gt;</code> <a href=\"#scaling\">s</a> *",
            ),
            ("JWT saves the *store*, not CPU.", "JWT saves the <em>store</em>, not CPU."),
            ("**CPU caps.** Each", "<strong>CPU caps.</strong> Each"),
            ("**a *b* `c*d` e**", "<strong>a <em>b</em> <code>c*d</code> e</strong>"),
            ("*a **b** c*", "<em>a <strong>b</strong> c</em>"),
            ("``a`b``", "<code>a`b</code>"),
        ]);
    }

    #[test]
    fn what_markdown_prints_stays_text() {
        let literal =
            ["2 * 3 * 4", "a * b*", "**open", "*open", "close* it", "``", "a ` b", "***x***", "[not a link", "a*"];
        check(&literal.map(|s| (s, s)));
        check(&[
            // Unmatched inside a span: the span still closes where it opened.
            ("**a *b**", "<strong>a *b</strong>"),
            ("*a `b*` c*", "<em>a <code>b*</code> c</em>"),
        ]);
    }

    #[test]
    fn emphasised_section_names_link_to_their_heading() {
        check(&[
            ("(see *Limits of this run*)", "(see <a href=\"#limits\"><em>Limits of this run</em></a>)"),
            ("see *Session synchronisation*.", "see <a href=\"#sync\"><em>Session synchronisation</em></a>."),
            // Not a section, not emphasis, or already inside a link: no link.
            ("*Limits*", "<em>Limits</em>"),
            ("**Limits of this run**", "<strong>Limits of this run</strong>"),
            ("[*Limits of this run*](#x)", "<a href=\"#x\"><em>Limits of this run</em></a>"),
            // A heading whose text holds a link: the cross-reference is the only anchor.
            ("*Odd [x](#y)*", "<a href=\"#odd\"><em>Odd x</em></a>"),
        ]);
        let html = render("t", &blocks(), &[]);
        assert!(html.contains("<h2 id=\"limits\">Limits of this run</h2>"), "{html}");
    }
}
