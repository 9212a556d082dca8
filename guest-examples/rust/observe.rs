//! The Observe API for Rust guests, without crates: the raw imports of
//! `dylibso:observe/api` and safe wrappers that take `&str`.
//! (Included by the examples with `mod observe;`.)

#![allow(dead_code)]

#[link(wasm_import_module = "dylibso:observe/api")]
extern "C" {
    #[link_name = "span-enter"]
    fn observe_span_enter(ptr: *const u8, len: u32);
    #[link_name = "span-exit"]
    fn observe_span_exit();
    #[link_name = "span-tags"]
    fn observe_span_tags(ptr: *const u8, len: u32);
    #[link_name = "metric"]
    fn observe_metric(format: u32, ptr: *const u8, len: u32);
    #[link_name = "log"]
    fn observe_log(level: u32, ptr: *const u8, len: u32);
}

/// Levels of `log`, as numbered by the spec.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

const STATSD: u32 = 1;

pub fn span_enter(name: &str) {
    unsafe { observe_span_enter(name.as_ptr(), name.len() as u32) }
}

pub fn span_exit() {
    unsafe { observe_span_exit() }
}

/// Comma-separated tags for the innermost open span, e.g. `"user:1,tier:free"`.
pub fn span_tags(tags: &str) {
    unsafe { observe_span_tags(tags.as_ptr(), tags.len() as u32) }
}

/// One statsd line, e.g. `"requests:1|c"`.
pub fn statsd(line: &str) {
    unsafe { observe_metric(STATSD, line.as_ptr(), line.len() as u32) }
}

pub fn log(level: Level, message: &str) {
    unsafe { observe_log(level as u32, message.as_ptr(), message.len() as u32) }
}

/// A span that closes when dropped (so also on early return).
pub struct Span;

impl Span {
    pub fn enter(name: &str) -> Span {
        span_enter(name);
        Span
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        span_exit();
    }
}
