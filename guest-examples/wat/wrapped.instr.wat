;; wrapped.instr: the kitchensink pattern (c/kitchensink.c) as Dylibso's
;; compiler leaves it: the guest's helpers are instrumented, and so is every
;; call of an import, the Observe API's included - a span named after the
;; import around the call. So each manual span opens inside two function
;; spans (custom_span_enter, then span_enter's own) that end before it, and
;; closes inside two that started after it. Imports: span-enter 0,
;; span-exit 1, metric 2, log 3, fd_write 4, enter 5, exit 6,
;; memory-grow 7. Functions from 8:
;;
;;   8 _start
;;     9 custom_span_enter -> 0 span_enter
;;     run                              (manual)
;;       11 run_steps
;;         printf                       (manual)
;;           4 fd_write                 prints "Hello from Wasm!\n"
;;         12 write_stat
;;           statsd                     (manual) -> 2 metric: vowels.count:1|c
;;         13 write_log
;;           log_write                  (manual) -> 3 log: ERROR "Vowels Counted: 3"
;;     10 custom_span_exit -> 1 span_exit
;;
;; (each helper call under run has its custom_span_enter/_exit spans too).
;; Exit code 0; no error on the trace.
(module $wrapped
  (import "dylibso:observe/api" "span-enter" (func $span_enter (param i32 i32)))
  (import "dylibso:observe/api" "span-exit" (func $span_exit))
  (import "dylibso:observe/api" "metric" (func $metric (param i32 i32 i32)))
  (import "dylibso:observe/api" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\40\00\00\00\11\00\00\00")    ;; iovec -> "Hello from Wasm!\n"
  (data (i32.const 16) "run")
  (data (i32.const 20) "printf")
  (data (i32.const 28) "statsd")
  (data (i32.const 36) "log_write")
  (data (i32.const 64) "Hello from Wasm!\n")
  (data (i32.const 96) "vowels.count:1|c")
  (data (i32.const 128) "Vowels Counted: 3")

  (func $_start (export "_start")
    (call $enter (i32.const 8))
    (call $custom_span_enter (i32.const 16) (i32.const 3))     ;; run
    (call $run_steps)
    (call $custom_span_exit)
    (call $exit (i32.const 8)))

  (func $custom_span_enter (param $ptr i32) (param $len i32)
    (call $enter (i32.const 9))
    (call $enter (i32.const 0))
    (call $span_enter (local.get $ptr) (local.get $len))
    (call $exit (i32.const 0))
    (call $exit (i32.const 9)))

  (func $custom_span_exit
    (call $enter (i32.const 10))
    (call $enter (i32.const 1))
    (call $span_exit)
    (call $exit (i32.const 1))
    (call $exit (i32.const 10)))

  (func $run_steps
    (call $enter (i32.const 11))
    (call $custom_span_enter (i32.const 20) (i32.const 6))     ;; printf
    (call $enter (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 4))
    (call $custom_span_exit)
    (call $write_stat)
    (call $write_log)
    (call $exit (i32.const 11)))

  (func $write_stat
    (call $enter (i32.const 12))
    (call $custom_span_enter (i32.const 28) (i32.const 6))     ;; statsd
    (call $enter (i32.const 2))
    (call $metric (i32.const 1) (i32.const 96) (i32.const 16))
    (call $exit (i32.const 2))
    (call $custom_span_exit)
    (call $exit (i32.const 12)))

  (func $write_log
    (call $enter (i32.const 13))
    (call $custom_span_enter (i32.const 36) (i32.const 9))     ;; log_write
    (call $enter (i32.const 3))
    (call $log (i32.const 1) (i32.const 128) (i32.const 17))
    (call $exit (i32.const 3))
    (call $custom_span_exit)
    (call $exit (i32.const 13)))
)
