//! `report.md`: GitHub-flavoured Markdown, charts as images next to it.

use crate::report::doc::{Align, Block};

pub fn render(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading { level, text, .. } => {
                out.push_str(&"#".repeat(usize::from(*level).clamp(1, 6)));
                out.push(' ');
                out.push_str(text);
                out.push_str("\n\n");
            }
            Block::Para(t) => {
                out.push_str(t);
                out.push_str("\n\n");
            }
            Block::Bullets(items) => {
                for i in items {
                    out.push_str("- ");
                    out.push_str(i);
                    out.push('\n');
                }
                out.push('\n');
            }
            Block::Note(t) => {
                out.push_str("> ");
                out.push_str(&t.replace('\n', "\n> "));
                out.push_str("\n\n");
            }
            Block::Chart { file, title } => {
                out.push_str(&format!("![{title}]({file})\n\n"));
            }
            Block::Table { head, align, rows } => {
                let cell = |s: &str| s.replace('|', "\\|");
                out.push_str(&format!("| {} |\n", head.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
                let rule: Vec<&str> =
                    (0..head.len()).map(|i| if align.get(i) == Some(&Align::Right) { "---:" } else { "---" }).collect();
                out.push_str(&format!("|{}|\n", rule.join("|")));
                for r in rows {
                    out.push_str(&format!("| {} |\n", r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")));
                }
                out.push('\n');
            }
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
