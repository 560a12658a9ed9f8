//! DynamoDB's update and condition expressions, as far as livecount's requests use them:
//! `SET` (a value, or `if_not_exists(path, value)`), `ADD` to a number, `REMOVE`; conditions of
//! `attribute_exists`, `attribute_not_exists`, comparisons, `AND`, `OR`, `NOT` and parentheses.
//! Names and values are placeholders (`#n0`, `:v0`), as every livecount request writes them.
//!
//! The model applies the very requests livecount builds, so a field a plan computes but the
//! request does not carry changes nothing here either.

use aws_sdk_dynamodb::types::AttributeValue;
use std::cmp::Ordering;
use std::collections::HashMap;

pub use livecount_core::requests::Item;

/// Why an expression cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    #[error("expression {expression:?}: {reason}")]
    Syntax { expression: String, reason: String },
    #[error("placeholder {0} is not defined")]
    Undefined(String),
    #[error("ADD needs numbers, attribute {0} is not one")]
    NotANumber(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String),
    Value(String),
    Word(String),
    Punct(&'static str),
}

fn tokens(text: &str) -> Result<Vec<Token>, ExpressionError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let syntax = |reason: String| ExpressionError::Syntax {
        expression: text.to_owned(),
        reason,
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let word_end = |from: usize| {
            let mut j = from;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            j
        };
        match c {
            b'#' | b':' => {
                let end = word_end(i + 1);
                let word = text[i..end].to_owned();
                out.push(if c == b'#' {
                    Token::Name(word)
                } else {
                    Token::Value(word)
                });
                i = end;
            }
            b'(' | b')' | b',' | b'=' | b'+' | b'-' => {
                out.push(Token::Punct(match c {
                    b'(' => "(",
                    b')' => ")",
                    b',' => ",",
                    b'=' => "=",
                    b'+' => "+",
                    _ => "-",
                }));
                i += 1;
            }
            b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    (b'<', Some(b'>')) => ("<>", 2),
                    (b'<', Some(b'=')) => ("<=", 2),
                    (b'>', Some(b'=')) => (">=", 2),
                    (b'<', _) => ("<", 1),
                    _ => (">", 1),
                };
                out.push(Token::Punct(op));
                i += len;
            }
            c if c.is_ascii_alphabetic() => {
                let end = word_end(i);
                out.push(Token::Word(text[i..end].to_owned()));
                i = end;
            }
            other => return Err(syntax(format!("unexpected {:?}", other as char))),
        }
    }
    Ok(out)
}

/// An operand: a path, a value, or `if_not_exists(path, operand)`.
#[derive(Debug, Clone)]
enum Operand {
    Path(String),
    Value(String),
    IfNotExists(String, Box<Operand>),
}

#[derive(Debug, Clone)]
enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Exists(String, bool),
    Compare(Operand, &'static str, Operand),
}

/// A parsed update expression.
#[derive(Debug, Clone, Default)]
pub struct Update {
    set: Vec<(String, Operand)>,
    add: Vec<(String, String)>,
    remove: Vec<String>,
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self, ExpressionError> {
        Ok(Self {
            text,
            tokens: tokens(text)?,
            at: 0,
        })
    }

    fn error(&self, reason: &str) -> ExpressionError {
        ExpressionError::Syntax {
            expression: self.text.to_owned(),
            reason: format!("{reason} at token {}", self.at),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(q)) if *q == p) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), ExpressionError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {p}")))
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(v)) if v.eq_ignore_ascii_case(w)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn path(&mut self) -> Result<String, ExpressionError> {
        match self.next() {
            Some(Token::Name(name)) => Ok(name),
            _ => Err(self.error("expected a #name")),
        }
    }

    fn operand(&mut self) -> Result<Operand, ExpressionError> {
        match self.next() {
            Some(Token::Name(name)) => Ok(Operand::Path(name)),
            Some(Token::Value(value)) => Ok(Operand::Value(value)),
            Some(Token::Word(w)) if w == "if_not_exists" => {
                self.expect_punct("(")?;
                let path = self.path()?;
                self.expect_punct(",")?;
                let fallback = self.operand()?;
                self.expect_punct(")")?;
                Ok(Operand::IfNotExists(path, Box::new(fallback)))
            }
            _ => Err(self.error("expected an operand")),
        }
    }

    fn update(mut self) -> Result<Update, ExpressionError> {
        let mut update = Update::default();
        while self.peek().is_some() {
            if self.eat_word("SET") {
                loop {
                    let path = self.path()?;
                    self.expect_punct("=")?;
                    update.set.push((path, self.operand()?));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
            } else if self.eat_word("ADD") {
                loop {
                    let path = self.path()?;
                    let Some(Token::Value(value)) = self.next() else {
                        return Err(self.error("ADD expects a :value"));
                    };
                    update.add.push((path, value));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
            } else if self.eat_word("REMOVE") {
                loop {
                    update.remove.push(self.path()?);
                    if !self.eat_punct(",") {
                        break;
                    }
                }
            } else {
                return Err(self.error("expected SET, ADD or REMOVE"));
            }
        }
        Ok(update)
    }

    fn condition(mut self) -> Result<Condition, ExpressionError> {
        let condition = self.or()?;
        if self.peek().is_some() {
            return Err(self.error("unexpected text after the condition"));
        }
        Ok(condition)
    }

    fn or(&mut self) -> Result<Condition, ExpressionError> {
        let mut terms = vec![self.and()?];
        while self.eat_word("OR") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Condition::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Condition, ExpressionError> {
        let mut terms = vec![self.unary()?];
        while self.eat_word("AND") {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Condition::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Condition, ExpressionError> {
        if self.eat_word("NOT") {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.eat_punct("(") {
            let inner = self.or()?;
            self.expect_punct(")")?;
            return Ok(inner);
        }
        for (function, exists) in [("attribute_exists", true), ("attribute_not_exists", false)] {
            if self.eat_word(function) {
                self.expect_punct("(")?;
                let path = self.path()?;
                self.expect_punct(")")?;
                return Ok(Condition::Exists(path, exists));
            }
        }
        let left = self.operand()?;
        let op = match self.next() {
            Some(Token::Punct(op)) if ["=", "<>", "<", "<=", ">", ">="].contains(&op) => op,
            _ => return Err(self.error("expected a comparator")),
        };
        Ok(Condition::Compare(left, op, self.operand()?))
    }
}

/// A request's expressions, parsed once and applied to items.
#[derive(Debug, Clone)]
pub struct Compiled {
    update: Update,
    condition: Option<Condition>,
}

impl Compiled {
    pub fn new(update: &str, condition: Option<&str>) -> Result<Self, ExpressionError> {
        Ok(Self {
            update: Parser::new(update)?.update()?,
            condition: condition
                .map(|c| Parser::new(c).and_then(Parser::condition))
                .transpose()?,
        })
    }

    /// Whether the condition holds on `item` (an absent item has no attributes).
    pub fn condition_holds(
        &self,
        item: Option<&Item>,
        scope: &Scope,
    ) -> Result<bool, ExpressionError> {
        match &self.condition {
            None => Ok(true),
            Some(condition) => evaluate(condition, item, scope),
        }
    }

    /// The item after the update (the key attributes are the caller's).
    pub fn apply(&self, item: &mut Item, scope: &Scope) -> Result<(), ExpressionError> {
        // Every operand is read from the item as it was, then assigned.
        let mut sets = Vec::with_capacity(self.update.set.len());
        for (path, operand) in &self.update.set {
            let value = resolve(operand, Some(item), scope)?
                .ok_or_else(|| ExpressionError::Undefined(format!("{operand:?}")))?;
            sets.push((scope.name(path)?, value));
        }
        for (name, value) in sets {
            match item.get_mut(name) {
                Some(slot) => *slot = value,
                None => {
                    item.insert(name.to_owned(), value);
                }
            }
        }
        for (path, value) in &self.update.add {
            let name = scope.name(path)?;
            let delta = scope.value(value)?;
            let sum = match (item.get(name), delta) {
                (None, AttributeValue::N(d)) => d.clone(),
                (Some(AttributeValue::N(old)), AttributeValue::N(d)) => add_numbers(old, d)
                    .ok_or_else(|| ExpressionError::NotANumber(name.to_owned()))?,
                _ => return Err(ExpressionError::NotANumber(name.to_owned())),
            };
            item.insert(name.to_owned(), AttributeValue::N(sum));
        }
        for path in &self.update.remove {
            item.remove(scope.name(path)?);
        }
        Ok(())
    }
}

/// The placeholders of one request.
pub struct Scope<'a> {
    pub names: &'a HashMap<String, String>,
    pub values: &'a Item,
}

impl Scope<'_> {
    fn name(&self, placeholder: &str) -> Result<&str, ExpressionError> {
        self.names
            .get(placeholder)
            .map(String::as_str)
            .ok_or_else(|| ExpressionError::Undefined(placeholder.to_owned()))
    }

    fn value(&self, placeholder: &str) -> Result<&AttributeValue, ExpressionError> {
        self.values
            .get(placeholder)
            .ok_or_else(|| ExpressionError::Undefined(placeholder.to_owned()))
    }
}

fn resolve(
    operand: &Operand,
    item: Option<&Item>,
    scope: &Scope,
) -> Result<Option<AttributeValue>, ExpressionError> {
    Ok(match operand {
        Operand::Value(v) => Some(scope.value(v)?.clone()),
        Operand::Path(p) => item.and_then(|i| i.get(scope.name(p).ok()?)).cloned(),
        Operand::IfNotExists(p, fallback) => match item.and_then(|i| i.get(scope.name(p).ok()?)) {
            Some(existing) => Some(existing.clone()),
            None => resolve(fallback, item, scope)?,
        },
    })
}

fn evaluate(
    condition: &Condition,
    item: Option<&Item>,
    scope: &Scope,
) -> Result<bool, ExpressionError> {
    Ok(match condition {
        Condition::Or(terms) => {
            for term in terms {
                if evaluate(term, item, scope)? {
                    return Ok(true);
                }
            }
            false
        }
        Condition::And(terms) => {
            for term in terms {
                if !evaluate(term, item, scope)? {
                    return Ok(false);
                }
            }
            true
        }
        Condition::Not(inner) => !evaluate(inner, item, scope)?,
        Condition::Exists(path, exists) => {
            let name = scope.name(path)?;
            item.is_some_and(|i| i.contains_key(name)) == *exists
        }
        Condition::Compare(left, op, right) => {
            let (Some(a), Some(b)) = (resolve(left, item, scope)?, resolve(right, item, scope)?)
            else {
                return Ok(false);
            };
            match compare(&a, &b) {
                None => *op == "<>",
                Some(ordering) => match *op {
                    "=" => ordering == Ordering::Equal,
                    "<>" => ordering != Ordering::Equal,
                    "<" => ordering == Ordering::Less,
                    "<=" => ordering != Ordering::Greater,
                    ">" => ordering == Ordering::Greater,
                    _ => ordering != Ordering::Less,
                },
            }
        }
    })
}

/// Numbers by value, strings by their UTF-8 bytes, Booleans by equality; other pairs do not
/// compare (as in DynamoDB, a comparison of different types is false, `<>` true).
fn compare(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => {
            match (x.parse::<i128>(), y.parse::<i128>()) {
                (Ok(x), Ok(y)) => Some(x.cmp(&y)),
                _ => x.parse::<f64>().ok()?.partial_cmp(&y.parse::<f64>().ok()?),
            }
        }
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::Bool(x), AttributeValue::Bool(y)) if x == y => Some(Ordering::Equal),
        _ => None,
    }
}

fn add_numbers(a: &str, b: &str) -> Option<String> {
    match (a.parse::<i128>(), b.parse::<i128>()) {
        (Ok(x), Ok(y)) => Some((x + y).to_string()),
        _ => Some((a.parse::<f64>().ok()? + b.parse::<f64>().ok()?).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: i64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    #[test]
    fn set_add_remove_and_conditions_apply_as_dynamodb_documents_them() {
        let names = HashMap::from([
            ("#a".to_owned(), "a".to_owned()),
            ("#b".to_owned(), "b".to_owned()),
            ("#c".to_owned(), "c".to_owned()),
        ]);
        let values = HashMap::from([(":one".to_owned(), n(1)), (":five".to_owned(), n(5))]);
        let scope = Scope {
            names: &names,
            values: &values,
        };
        let compiled = Compiled::new(
            "SET #a = :five, #c = if_not_exists(#c, :one) ADD #b :one REMOVE #c",
            Some("attribute_not_exists(#a) OR (#a < :five AND NOT #b = :one)"),
        )
        .expect("parses");
        let mut item = Item::new();
        assert!(compiled.condition_holds(None, &scope).expect("evaluates"));
        compiled.apply(&mut item, &scope).expect("applies");
        assert_eq!(
            item,
            HashMap::from([("a".into(), n(5)), ("b".into(), n(1))])
        );
        assert!(
            !compiled
                .condition_holds(Some(&item), &scope)
                .expect("evaluates")
        );
        item.insert("a".into(), n(4));
        item.insert("b".into(), n(2));
        assert!(
            compiled
                .condition_holds(Some(&item), &scope)
                .expect("evaluates")
        );
        compiled.apply(&mut item, &scope).expect("applies");
        assert_eq!(item.get("b"), Some(&n(3)));
    }

    #[test]
    fn malformed_expressions_say_what_is_wrong() {
        for (update, condition) in [
            ("SET #a", None),
            ("FROB #a", None),
            ("SET #a = :v", Some("#a ~ :v")),
            ("ADD #a #b", None),
        ] {
            assert!(
                matches!(
                    Compiled::new(update, condition),
                    Err(ExpressionError::Syntax { .. })
                ),
                "{update} / {condition:?}"
            );
        }
    }
}
