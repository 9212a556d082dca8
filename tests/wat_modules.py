"""Small guests for the SDK's own tests, written in WAT."""

from observe_sdk.abi import IMPORTS as ABI_IMPORTS
from observe_sdk.abi import NS_API, NS_INSTRUMENT, NS_LEGACY

# WAT names of the imports, by canonical operation (the same in every namespace)
WAT_NAMES = {"enter": "$enter", "exit": "$exit", "memory-grow": "$grow", "span-enter": "$span_enter",
             "span-exit": "$span_exit", "span-tags": "$span_tags", "metric": "$metric", "log": "$log"}


def import_block(*namespaces: str, named: bool = True) -> str:
    """The Observe imports of ``namespaces``, in the spec's order, from the ABI table
    (``named=False``: no WAT names, so that several namespaces fit in one module)."""
    lines = []
    for (ns, name), (params, op) in ABI_IMPORTS.items():
        if ns in namespaces:
            plist = f" (param {' '.join(params)})" if params else ""
            wat_name = WAT_NAMES[op] if named else ""
            lines.append(f'  (import "{ns}" "{name}" (func {wat_name}{plist}))')
    return "\n" + "\n".join(lines) + "\n"


IMPORTS = import_block(NS_INSTRUMENT, NS_API)
LEGACY_IMPORTS = import_block(NS_LEGACY)  # its pointers are i64
# function indices: imports 0..7, so the first defined function is 8


def module(body: str, *, wasi_exit: bool = False, data: str = "") -> str:
    extra = '(import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))' if wasi_exit else ""
    return f'''(module {IMPORTS} {extra}
  (memory (export "memory") 1)
  (data (i32.const 0) "{data}")
  {body})'''


# main(8) -> one(9) -> two(10) -> three(11); three grows memory by 1 page; "busy" keeps spans long.
NESTED = module(r'''
  (func $busy (local i32)
    (loop $l (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const 30000)))))
  (func $main (export "_start") (call $enter (i32.const 9)) (call $one) (call $exit (i32.const 9)))
  (func $one (call $enter (i32.const 10)) (call $busy) (call $two) (call $exit (i32.const 10)))
  (func $two (call $enter (i32.const 11)) (call $busy) (call $three) (call $exit (i32.const 11)))
  (func $three (call $enter (i32.const 12)) (call $busy)
    (call $grow (i32.const 1)) (drop (memory.grow (i32.const 1)))
    (call $exit (i32.const 12)))
''')
NESTED_TREE = [("main", [("one", [("two", [("three", [])])])])]

# manual spans with tags, a metric and an error log, mixed with function spans
MIXED = module(r'''
  (func $main (export "_start")
    (call $enter (i32.const 8))
    (call $span_enter (i32.const 0) (i32.const 3))          ;; "run"
    (call $span_tags (i32.const 3) (i32.const 17))          ;; "user:alice,role:x"
    (call $helper)
    (call $span_enter (i32.const 20) (i32.const 6))         ;; "statsd"
    (call $metric (i32.const 1) (i32.const 26) (i32.const 16))   ;; "vowels.count:1|c"
    (call $span_exit)
    (call $span_exit)
    (call $log (i32.const 1) (i32.const 42) (i32.const 17))      ;; "Vowels Counted: 3"
    (call $exit (i32.const 8)))
  (func $helper (call $enter (i32.const 9)) (call $exit (i32.const 9)))
''', data="runuser:alice,role:xstatsdvowels.count:1|cVowels Counted: 3")

LEGACY = r'''(module'''  + LEGACY_IMPORTS + r'''
  (memory (export "memory") 1)
  (data (i32.const 0) "oldk:vgauge:5|ghi")
  (func $main (export "_start")
    (call $enter (i32.const 8))
    (call $span_enter (i64.const 0) (i32.const 3))
    (call $span_tags (i64.const 3) (i32.const 3))
    (call $metric (i32.const 1) (i64.const 6) (i32.const 9))
    (call $log (i32.const 3) (i64.const 15) (i32.const 2))
    (call $grow (i32.const 1)) (drop (memory.grow (i32.const 1)))
    (call $span_exit)
    (call $exit (i32.const 8)))
)'''

PLAIN = r'''(module (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "_start")))'''

# every kind of bad input, then a good log so we know the guest carried on
BAD = module(r'''
  (func $main (export "_start")
    (call $span_exit)                                        ;; nothing open
    (call $span_enter (i32.const 65530) (i32.const 100))     ;; out of bounds
    (call $span_enter (i32.const -1) (i32.const 1))          ;; pointer 0xffffffff
    (call $span_exit) (call $span_exit)                      ;; the unreadable spans still opened
    (call $log (i32.const 1) (i32.const 0) (i32.const 2))    ;; invalid UTF-8
    (call $log (i32.const 42) (i32.const 2) (i32.const 2))   ;; unknown level
    (call $metric (i32.const 7) (i32.const 2) (i32.const 2)) ;; unknown format
    (call $span_tags (i32.const 2) (i32.const 2))            ;; no span open
    (call $exit (i32.const 8))                               ;; exit of a function never entered
    (call $log (i32.const 3) (i32.const 2) (i32.const 2)))   ;; "ok"
''', data="\\ff\\feok")

TRAP = module(r'''
  (func $main (export "_start") (call $enter (i32.const 8)) (call $inner) (call $exit (i32.const 8)))
  (func $inner (call $enter (i32.const 9))
    (call $span_enter (i32.const 0) (i32.const 4))
    unreachable)
''', data="work")

EXIT = module(r'''
  (func $main (export "_start") (call $enter (i32.const 9)) (call $inner (global.get $code)) (call $exit (i32.const 9)))
  (func $inner (export "exit_with") (param i32) (call $enter (i32.const 10))
    (call $proc_exit (local.get 0)) (call $exit (i32.const 10)))
  (global $code (mut i32) (i32.const 3))
''', wasi_exit=True)

REACTOR = module(r'''
  (global $count (mut i32) (i32.const 0))
  (func $init (export "_initialize") (call $enter (i32.const 8)) (call $exit (i32.const 8)))
  (func $bump (export "bump") (result i32)
    (call $enter (i32.const 9))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (call $log (i32.const 4) (i32.const 0) (i32.const 4))
    (call $exit (i32.const 9))
    (global.get $count))
''', data="bump")


def loop_module(n: int) -> str:
    """enter/exit pairs in a loop, n times."""
    return module(rf'''
  (func $main (export "_start") (local i32)
    (call $enter (i32.const 8))
    (loop $l
      (call $enter (i32.const 9)) (call $exit (i32.const 9))
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const {n}))))
    (call $exit (i32.const 8)))
  (func $leaf)
''')
