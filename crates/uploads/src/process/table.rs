//! The built-in processor for CSV and text: how many records and columns, counted while
//! the bytes stream (csv-core keeps no more than one field in memory), so a
//! multi-gigabyte file costs no memory.

use super::{Content, FileFacts, ProcessError, Processor, Verdict};
use crate::model::TableFacts;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

/// Counts records and the first record's columns of `text/csv`; lines of other text.
#[derive(Debug, Default)]
pub struct TableProcessor;

impl Processor for TableProcessor {
    fn name(&self) -> &'static str {
        "table"
    }

    fn accepts(&self, file: &FileFacts) -> bool {
        file.detected_type.starts_with("text/")
    }

    fn process<'a>(
        &'a self,
        file: &'a FileFacts,
        content: &'a Content<'a>,
    ) -> BoxFuture<'a, Result<Verdict, ProcessError>> {
        async move {
            let mut counter = Counter::new(file.detected_type == "text/csv");
            let mut stream = content.stream().await?;
            while let Some(chunk) = stream.next().await {
                counter.feed(&chunk?);
            }
            let facts = counter.finish();
            Ok(Verdict::Accept(Some(
                serde_json::to_value(facts).map_err(|e| ProcessError::Permanent(e.into()))?,
            )))
        }
        .boxed()
    }
}

/// Incremental counting over chunks of any size.
struct Counter {
    csv: Option<csv_core::Reader>,
    rows: u64,
    columns: u64,
    fields_in_record: u64,
    /// Plain text: whether the last byte seen ended a line.
    at_line_start: bool,
    scratch: Vec<u8>,
    ends: Vec<usize>,
}

impl Counter {
    fn new(csv: bool) -> Self {
        Self {
            csv: csv.then(csv_core::Reader::new),
            rows: 0,
            columns: 0,
            fields_in_record: 0,
            at_line_start: true,
            scratch: vec![0; 64 * 1024],
            ends: vec![0; 1024],
        }
    }

    fn feed(&mut self, mut input: &[u8]) {
        let Some(reader) = self.csv.as_mut() else {
            for &b in input {
                if b == b'\n' {
                    self.rows += 1;
                }
            }
            if let Some(&last) = input.last() {
                self.at_line_start = last == b'\n';
            }
            return;
        };
        loop {
            let (result, read, _, ends) =
                reader.read_record(input, &mut self.scratch, &mut self.ends);
            input = &input[read..];
            match result {
                csv_core::ReadRecordResult::Record => {
                    let fields = self.fields_in_record + ends as u64;
                    if self.rows == 0 {
                        self.columns = fields;
                    }
                    self.rows += 1;
                    self.fields_in_record = 0;
                }
                // A field longer than the scratch buffer, or a record with more fields
                // than `ends`: only counts matter, so the buffers are reused.
                csv_core::ReadRecordResult::OutputFull
                | csv_core::ReadRecordResult::OutputEndsFull => {
                    self.fields_in_record += ends as u64;
                }
                csv_core::ReadRecordResult::InputEmpty | csv_core::ReadRecordResult::End => {
                    self.fields_in_record += ends as u64;
                    return;
                }
            }
        }
    }

    fn finish(mut self) -> TableFacts {
        if self.csv.is_some() {
            // An empty input tells the reader the data is over: it yields a last record
            // without a trailing newline.
            self.feed(&[]);
        } else if !self.at_line_start {
            self.rows += 1;
        }
        TableFacts {
            rows: self.rows,
            columns: if self.csv.is_some() {
                self.columns
            } else {
                u64::from(self.rows > 0)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counter;

    fn count(csv: bool, chunks: &[&[u8]]) -> (u64, u64) {
        let mut c = Counter::new(csv);
        for chunk in chunks {
            c.feed(chunk);
        }
        let facts = c.finish();
        (facts.rows, facts.columns)
    }

    #[test]
    fn csv_records_across_chunks() {
        assert_eq!(count(true, &[b"a,b,c\n1,2,3\n4,", b"5,6"]), (3, 3));
        assert_eq!(count(true, &[b"a,\"multi\nline\",c\n", b"1,2,3\n"]), (2, 3));
        assert_eq!(count(true, &[b""]), (0, 0));
    }

    #[test]
    fn text_lines() {
        assert_eq!(count(false, &[b"one\ntwo\n"]), (2, 1));
        assert_eq!(count(false, &[b"one\ntw", b"o"]), (2, 1));
        assert_eq!(count(false, &[]), (0, 0));
    }
}
