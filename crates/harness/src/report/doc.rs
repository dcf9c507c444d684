//! A tiny document model: the report's content is built once as blocks, and
//! [`markdown`](super::markdown) and [`html`](super::html) only decide how blocks look.
//!
//! Inline text may use `**bold**`, `*emphasis*` and `` `code` `` — the markup both renderers
//! know; an emphasised section name becomes a link in the HTML.

/// Column alignment in a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// Level 1–3, and an anchor id (stable, ASCII).
    Heading {
        level: u8,
        id: &'static str,
        text: String,
    },
    Para(String),
    Bullets(Vec<String>),
    Table {
        head: Vec<String>,
        align: Vec<Align>,
        rows: Vec<Vec<String>>,
    },
    /// A chart by file name (`throughput.svg`); the HTML inlines it.
    Chart {
        file: &'static str,
        title: String,
    },
    /// Set apart: caveats, model disclaimers.
    Note(String),
}

/// Builder with short methods, so the content code reads like the report.
#[derive(Debug, Default)]
pub struct Doc {
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn h(&mut self, level: u8, id: &'static str, text: impl Into<String>) {
        self.blocks.push(Block::Heading { level, id, text: text.into() });
    }

    pub fn p(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Para(text.into()));
    }

    pub fn bullets(&mut self, items: Vec<String>) {
        if !items.is_empty() {
            self.blocks.push(Block::Bullets(items));
        }
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Note(text.into()));
    }

    pub fn chart(&mut self, file: &'static str, title: impl Into<String>) {
        self.blocks.push(Block::Chart { file, title: title.into() });
    }

    /// A table; `align` is one letter per column, `l` or `r`.
    pub fn table(&mut self, head: &[&str], align: &str, rows: Vec<Vec<String>>) {
        let align = align.chars().map(|c| if c == 'r' { Align::Right } else { Align::Left }).collect();
        self.blocks.push(Block::Table { head: head.iter().map(|s| (*s).to_owned()).collect(), align, rows });
    }
}
