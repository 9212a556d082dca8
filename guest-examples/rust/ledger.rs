//! ledger: a larger Rust guest (std collections, traits, generics, float
//! formatting, error handling) for the instrumenter and the SDK. It parses
//! an embedded ledger of transactions, validates them, aggregates per
//! account and per month, and prints a report. With the Observe API:
//!
//!   ledger                           tags lang:rust,entries:12
//!     parse                          log WARN `skipped line 13: unknown kind "steal"`
//!     aggregate                      metric ledger.entries:12|c
//!     report                         log INFO "report: 4 accounts"
//!
//! Output (stdout): "accounts: 4", one line per account sorted by balance,
//! the busiest month, and "checksum: 2791"; exit code 0. With the argument
//! "strict", the bad line is an error: `error: line 13: unknown kind "steal"`
//! on stderr, exit 2 (spans "ledger" and "parse" closed before the exit).

mod observe;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use observe::{log, span_tags, statsd, Level, Span};

const LEDGER: &str = "\
2024-01-03,alice,deposit,1200.00
2024-01-05,bob,deposit,300.50
2024-01-09,alice,withdraw,200.25
2024-02-01,carol,deposit,5000.00
2024-02-11,bob,withdraw,100.00
2024-02-14,dave,deposit,75.75
2024-02-20,carol,withdraw,1250.00
2024-03-02,alice,deposit,99.99
2024-03-15,dave,withdraw,20.00
2024-03-16,bob,deposit,42.00
2024-03-30,carol,deposit,10.01
2024-03-31,alice,withdraw,0.99
2024-04-01,mallory,steal,1000000
";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Deposit,
    Withdraw,
}

#[derive(Debug, Clone)]
struct Entry {
    month: String,
    account: String,
    kind: Kind,
    cents: i64,
}

#[derive(Debug)]
enum ParseError {
    Fields(usize),
    Kind(String),
    Amount(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Fields(n) => write!(f, "expected 4 fields, found {}", n),
            ParseError::Kind(k) => write!(f, "unknown kind {:?}", k),
            ParseError::Amount(a) => write!(f, "bad amount {:?}", a),
        }
    }
}

trait Summary {
    fn label(&self) -> String;
    fn value(&self) -> i64;
}

struct Account {
    name: String,
    balance: i64,
    count: usize,
}

impl Summary for Account {
    fn label(&self) -> String {
        format!("{} ({} entries)", self.name, self.count)
    }
    fn value(&self) -> i64 {
        self.balance
    }
}

struct Month {
    name: String,
    volume: i64,
}

impl Summary for Month {
    fn label(&self) -> String {
        format!("month {}", self.name)
    }
    fn value(&self) -> i64 {
        self.volume
    }
}

#[inline(never)]
fn parse_cents(text: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Amount(text.to_string());
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) if f.len() == 2 => (w, f),
        _ => return Err(bad()),
    };
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = frac.parse().map_err(|_| bad())?;
    Ok(whole * 100 + frac)
}

#[inline(never)]
fn parse_line(line: &str) -> Result<Entry, ParseError> {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != 4 {
        return Err(ParseError::Fields(fields.len()));
    }
    let kind = match fields[2] {
        "deposit" => Kind::Deposit,
        "withdraw" => Kind::Withdraw,
        other => return Err(ParseError::Kind(other.to_string())),
    };
    Ok(Entry {
        month: fields[0][..7].to_string(),
        account: fields[1].to_string(),
        kind,
        cents: parse_cents(fields[3])?,
    })
}

#[inline(never)]
fn parse(text: &str, strict: bool) -> Result<Vec<Entry>, String> {
    let _span = Span::enter("parse");
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(entry) => entries.push(entry),
            Err(e) if strict => return Err(format!("line {}: {}", i + 1, e)),
            Err(e) => log(Level::Warn, &format!("skipped line {}: {}", i + 1, e)),
        }
    }
    Ok(entries)
}

#[inline(never)]
fn aggregate(entries: &[Entry]) -> (Vec<Account>, Vec<Month>) {
    let _span = Span::enter("aggregate");
    let mut accounts: HashMap<&str, Account> = HashMap::new();
    let mut months: BTreeMap<&str, i64> = BTreeMap::new();
    for e in entries {
        let signed = if e.kind == Kind::Deposit { e.cents } else { -e.cents };
        let acct = accounts.entry(&e.account).or_insert_with(|| Account {
            name: e.account.clone(),
            balance: 0,
            count: 0,
        });
        acct.balance += signed;
        acct.count += 1;
        *months.entry(&e.month).or_insert(0) += e.cents;
    }
    statsd(&format!("ledger.entries:{}|c", entries.len()));
    let mut accounts: Vec<Account> = accounts.into_values().collect();
    accounts.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.name.cmp(&b.name)));
    let months = months
        .into_iter()
        .map(|(name, volume)| Month { name: name.to_string(), volume })
        .collect();
    (accounts, months)
}

#[inline(never)]
fn busiest<T: Summary>(items: &[T]) -> Option<&T> {
    items.iter().max_by_key(|s| s.value())
}

#[inline(never)]
fn dollars(cents: i64) -> String {
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100)
}

#[inline(never)]
fn report(accounts: &[Account], months: &[Month]) -> u64 {
    let _span = Span::enter("report");
    println!("accounts: {}", accounts.len());
    let rows: Vec<Box<dyn Summary>> = accounts
        .iter()
        .map(|a| Box::new(Account { name: a.name.clone(), balance: a.balance, count: a.count }) as Box<dyn Summary>)
        .collect();
    for row in &rows {
        println!("  {:<22} {:>10}", row.label(), dollars(row.value()));
    }
    if let Some(m) = busiest(months) {
        println!("busiest: {} with {}", m.label(), dollars(m.value()));
    }
    log(Level::Info, &format!("report: {} accounts", accounts.len()));
    let checksum = accounts
        .iter()
        .flat_map(|a| a.name.bytes())
        .chain(months.iter().flat_map(|m| m.name.bytes()))
        .fold(0u64, |acc, b| acc + b as u64);
    println!("checksum: {}", checksum);
    checksum
}

fn main() {
    let strict = std::env::args().nth(1).as_deref() == Some("strict");
    let _span = Span::enter("ledger");
    let entries = match parse(LEDGER, strict) {
        Ok(entries) => entries,
        Err(message) => {
            eprintln!("error: {}", message);
            drop(_span);
            std::process::exit(2);
        }
    };
    span_tags(&format!("lang:rust,entries:{}", entries.len()));
    let (accounts, months) = aggregate(&entries);
    report(&accounts, &months);
}
