//! DynamoDB's size and capacity rules, as its documentation states them, so tests and the
//! benchmarks can check what livecount's items and requests cost without an AWS account:
//!
//! - an item's size is the sum of its attribute names' UTF-8 bytes and its values' sizes: a
//!   string by its UTF-8 bytes, a number by about one byte per two significant digits plus one,
//!   a binary by its bytes, a Boolean or null by one byte, a list or map by its elements plus
//!   three bytes and one per element;
//! - a write costs one write unit per started KB of the larger of the item before and after;
//! - a read costs one read unit per started 4 KB, half of that when eventually consistent.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The size DynamoDB gives an item, in bytes.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// `ceil(significant digits / 2) + 1`: leading and trailing zeros do not count.
fn number_size(number: &str) -> usize {
    let digits = number.bytes().filter(u8::is_ascii_digit);
    let leading = digits.clone().take_while(|&d| d == b'0').count();
    let total = digits.clone().count();
    let trailing = if leading == total {
        0
    } else {
        number
            .bytes()
            .rev()
            .filter(u8::is_ascii_digit)
            .take_while(|&d| d == b'0')
            .count()
    };
    let significant = total - leading - trailing;
    significant.max(1).div_ceil(2) + 1
}

/// Write units of one write that turns an item of `before` bytes into one of `after` bytes.
pub fn write_units(before: usize, after: usize) -> f64 {
    before.max(after).max(1).div_ceil(1024) as f64
}

/// Read units of one read of an item of `size` bytes.
pub fn read_units(size: usize, strongly_consistent: bool) -> f64 {
    let units = size.max(1).div_ceil(4096) as f64;
    if strongly_consistent {
        units
    } else {
        units / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_documented_rules() {
        let item = HashMap::from([
            ("PK".to_owned(), AttributeValue::S("stream".into())),
            ("b1700000015".to_owned(), AttributeValue::N("12345".into())),
            ("n".to_owned(), AttributeValue::N("1000".into())),
            ("ok".to_owned(), AttributeValue::Bool(true)),
        ]);
        // PK 2 + 6; b… 11 + (3 + 1); n 1 + (1 + 1); ok 2 + 1
        assert_eq!(item_size(&item), 8 + 15 + 3 + 3);
        assert_eq!(number_size("-0.00120"), 2);
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("1700000015"), 6);
        assert_eq!(number_size("123.4500"), 4);
    }

    #[test]
    fn capacity_rounds_up_per_started_unit() {
        assert_eq!(write_units(100, 1024), 1.0);
        assert_eq!(write_units(1025, 10), 2.0);
        assert_eq!(read_units(1000, false), 0.5);
        assert_eq!(read_units(4097, true), 2.0);
    }
}
