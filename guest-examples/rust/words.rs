//! words: a Rust guest using the Observe API. Counts words and vowels in a
//! fixed text through a few nested functions, and reports:
//!
//!   process                      tags lang:rust,words:9
//!     count_words
//!     count_vowels               log INFO "found 11 vowels"
//!     report                     metric words.processed:9|c
//!
//! Output: "words=9 vowels=11" then "longest=quick". Exit code 0.

mod observe;

use observe::{log, span_tags, statsd, Level, Span};

const TEXT: &str = "the quick brown fox jumps over the lazy dog";

#[inline(never)]
fn count_words(text: &str) -> usize {
    let _span = Span::enter("count_words");
    text.split_whitespace().count()
}

#[inline(never)]
fn count_vowels(text: &str) -> usize {
    let _span = Span::enter("count_vowels");
    let n = text.chars().filter(|c| "aeiou".contains(*c)).count();
    log(Level::Info, &format!("found {} vowels", n));
    n
}

#[inline(never)]
fn longest(text: &str) -> &str {
    text.split_whitespace()
        .fold("", |best, w| if w.len() > best.len() { w } else { best })
}

#[inline(never)]
fn report(words: usize, vowels: usize, text: &str) {
    let _span = Span::enter("report");
    statsd(&format!("words.processed:{}|c", words));
    println!("words={} vowels={}", words, vowels);
    println!("longest={}", longest(text));
}

#[inline(never)]
fn process(text: &str) {
    let _span = Span::enter("process");
    let words = count_words(text);
    span_tags(&format!("lang:rust,words:{}", words));
    let vowels = count_vowels(text);
    report(words, vowels, text);
}

fn main() {
    process(TEXT);
}
