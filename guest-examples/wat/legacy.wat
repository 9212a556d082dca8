;; legacy: a module speaking only the deprecated `dylibso_observe`
;; namespace, with 64-bit pointers in the manual functions. No WASI.
;; Imports 0..7, so $_start is function 8 and $main function 9.
;;
;;   _start (8) -> main (9) -> legacy-span (manual)   tags ns:legacy,ptr:i64
;;                                                   metric legacy.count:1|c
;;                                                   log WARN "legacy log"
;;                                                   allocation 1 page
;;
;; Memory grows from 1 to 2 pages. A host logs one deprecation warning.
(module $legacy
  (import "dylibso_observe" "instrument_enter" (func $enter (param i32)))
  (import "dylibso_observe" "instrument_exit" (func $exit (param i32)))
  (import "dylibso_observe" "instrument_memory_grow" (func $memory_grow (param i32)))
  (import "dylibso_observe" "span_enter" (func $span_enter (param i64 i32)))
  (import "dylibso_observe" "span_exit" (func $span_exit))
  (import "dylibso_observe" "span_tags" (func $span_tags (param i64 i32)))
  (import "dylibso_observe" "metric" (func $metric (param i32 i64 i32)))
  (import "dylibso_observe" "log" (func $log (param i32 i64 i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "legacy-span")             ;; 11 bytes
  (data (i32.const 120) "ns:legacy,ptr:i64")       ;; 17 bytes
  (data (i32.const 140) "legacy.count:1|c")        ;; 16 bytes
  (data (i32.const 160) "legacy log")              ;; 10 bytes

  (func $_start (export "_start")
    (call $enter (i32.const 8))
    (call $main)
    (call $exit (i32.const 8)))

  (func $main
    (call $enter (i32.const 9))
    (call $span_enter (i64.const 100) (i32.const 11))
    (call $span_tags (i64.const 120) (i32.const 17))
    (call $metric (i32.const 1) (i64.const 140) (i32.const 16))
    (call $log (i32.const 2) (i64.const 160) (i32.const 10))
    (call $memory_grow (i32.const 1))
    (drop (memory.grow (i32.const 1)))
    (call $span_exit)
    (call $exit (i32.const 9))))
