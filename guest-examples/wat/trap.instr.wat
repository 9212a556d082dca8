;; trap.instr: a trap (unreachable) inside nested instrumented functions,
;; under a manual span. No WASI. Imports: span-enter 0, span-exit 1,
;; span-tags 2, enter 3, exit 4, memory-grow 5.
;;
;;   6 _start -> 7 main -> risky (manual, tags expect:trap)
;;                           -> 8 outer -> 9 inner -> unreachable
;;
;; `_start` raises a wasm trap (unreachable). Open at that moment, innermost
;; first: inner, outer, risky, main, _start; a host closes them all as errors.
(module $trap
  (import "dylibso:observe/api" "span-enter" (func $span_enter (param i32 i32)))
  (import "dylibso:observe/api" "span-exit" (func $span_exit))
  (import "dylibso:observe/api" "span-tags" (func $span_tags (param i32 i32)))
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "risky")           ;; 5 bytes
  (data (i32.const 16) "expect:trap")    ;; 11 bytes

  (func $_start (export "_start")
    (call $enter (i32.const 6))
    (call $main)
    (call $exit (i32.const 6)))

  (func $main
    (call $enter (i32.const 7))
    (call $span_enter (i32.const 0) (i32.const 5))
    (call $span_tags (i32.const 16) (i32.const 11))
    (call $outer (i32.const 0))
    (call $span_exit)
    (call $exit (i32.const 7)))

  (func $outer (param $depth i32)
    (call $enter (i32.const 8))
    (call $inner (i32.add (local.get $depth) (i32.const 1)))
    (call $exit (i32.const 8)))

  (func $inner (param $depth i32)
    (call $enter (i32.const 9))
    (if (i32.gt_s (local.get $depth) (i32.const 0))
      (then unreachable))
    (call $exit (i32.const 9))))
