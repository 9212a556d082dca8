;; unbalanced: every kind of bad input a guest can hand the host, in one
;; `_start` that returns normally (exit code 0). No WASI. Imports:
;; span-enter 0, span-exit 1, span-tags 2, metric 3, log 4, enter 5,
;; exit 6, memory-grow 7; $_start is function 8. In order, `_start` calls:
;;
;;   1. span-enter "ok", span-tags "good:yes", span-exit        (all valid)
;;   2. span-exit with no span open                             (unbalanced)
;;   3. exit(8) with no span open                               (unbalanced)
;;   4. log(ERROR) with ptr 0xfffffff0, len 32                  (out of bounds)
;;   5. span-tags with ptr 65530, len 100 (ends past memory)   (out of bounds)
;;   6. log(INFO) with the bytes ff fe 41                       (invalid UTF-8)
;;   7. log with level 9, "bad level"                           (unknown level)
;;   8. metric with format 7, "bad.format:1|c"                  (unknown format)
;;   9. span-enter with ptr 0xfffffff0, len 4, then span-exit   (out of bounds)
;;  10. span-enter "left-open", never closed                    (left open)
;;
;; A host records each of 2..9 as an error on the trace and never crashes.
(module $unbalanced
  (import "dylibso:observe/api" "span-enter" (func $span_enter (param i32 i32)))
  (import "dylibso:observe/api" "span-exit" (func $span_exit))
  (import "dylibso:observe/api" "span-tags" (func $span_tags (param i32 i32)))
  (import "dylibso:observe/api" "metric" (func $metric (param i32 i32 i32)))
  (import "dylibso:observe/api" "log" (func $log (param i32 i32 i32)))
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "ok")
  (data (i32.const 8) "good:yes")            ;; 8 bytes
  (data (i32.const 16) "\ff\feA")            ;; 3 bytes, not UTF-8
  (data (i32.const 32) "bad level")          ;; 9 bytes
  (data (i32.const 48) "bad.format:1|c")     ;; 14 bytes
  (data (i32.const 64) "left-open")          ;; 9 bytes

  (func $_start (export "_start")
    (call $span_enter (i32.const 0) (i32.const 2))
    (call $span_tags (i32.const 8) (i32.const 8))
    (call $span_exit)
    (call $span_exit)
    (call $exit (i32.const 8))
    (call $log (i32.const 1) (i32.const 0xfffffff0) (i32.const 32))
    (call $span_tags (i32.const 65530) (i32.const 100))
    (call $log (i32.const 3) (i32.const 16) (i32.const 3))
    (call $log (i32.const 9) (i32.const 32) (i32.const 9))
    (call $metric (i32.const 7) (i32.const 48) (i32.const 14))
    (call $span_enter (i32.const 0xfffffff0) (i32.const 4))
    (call $span_exit)
    (call $span_enter (i32.const 64) (i32.const 9))))
