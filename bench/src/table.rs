//! The reports' markdown: tables built from rows of data, and documents built from blocks.

use std::fmt::{self, Display};

/// A markdown table: text columns on the left, number columns (right-aligned) after them.
pub struct MarkdownTable {
    headers: Vec<String>,
    left: usize,
    rows: Vec<Vec<String>>,
}

impl MarkdownTable {
    /// A table with the `left` columns aligned left, then the `right` columns aligned right.
    pub fn new(left: &[&str], right: &[&str]) -> Self {
        Self {
            headers: left.iter().chain(right).map(|&h| h.to_owned()).collect(),
            left: left.len(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, one cell per column.
    pub fn row(&mut self, cells: &[&dyn Display]) -> &mut Self {
        debug_assert_eq!(cells.len(), self.headers.len(), "one cell per column");
        self.rows
            .push(cells.iter().map(ToString::to_string).collect());
        self
    }
}

impl Display for MarkdownTable {
    /// The header, the alignment line and the rows, one a line (no newline after the last).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        write!(f, "{}\n|", line(&self.headers))?;
        for column in 0..self.headers.len() {
            f.write_str(if column < self.left { "---|" } else { "---:|" })?;
        }
        for row in &self.rows {
            write!(f, "\n{}", line(row))?;
        }
        Ok(())
    }
}

/// A markdown document: its blocks (paragraphs, headings, tables) a blank line apart, ending in
/// one newline.
#[derive(Default)]
pub struct Document(Vec<String>);

impl Document {
    /// Adds a block (a paragraph, a heading, a table).
    pub fn push(&mut self, block: impl Display) -> &mut Self {
        self.0.push(block.to_string());
        self
    }

    pub fn render(&self) -> String {
        format!("{}\n", self.0.join("\n\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Document, MarkdownTable};

    #[test]
    fn a_table_aligns_text_left_and_numbers_right() {
        let mut table = MarkdownTable::new(&["design"], &["samples", "exact"]);
        table.row(&[&"(a) livecount", &120, &format!("{:.1} %", 100.0)]);
        table.row(&[&"(b)", &7, &"32.0 %"]);
        assert_eq!(
            table.to_string(),
            "| design | samples | exact |\n|---|---:|---:|\n| (a) livecount | 120 | 100.0 % |\n| (b) | 7 | 32.0 % |"
        );
    }

    #[test]
    fn a_document_puts_a_blank_line_between_blocks() {
        let mut doc = Document::default();
        doc.push("# title").push(MarkdownTable::new(&[], &["n"]));
        assert_eq!(doc.render(), "# title\n\n| n |\n|---:|\n");
    }
}
