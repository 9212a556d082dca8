;; mixed.instr: automatic and manual spans on one stack, the WAT twin of
;; c/vowels.c as the instrumenter would leave it. Imports: fd_write 0,
;; span-enter 1, span-exit 2, span-tags 3, metric 4, log 5, enter 6,
;; exit 7, memory-grow 8. Functions from 9:
;;
;;   9 _start
;;     10 main
;;       run                        (manual)
;;         11 count_vowels          counts "Hello World" -> 3
;;         printf                   (manual, tags vowels:3,input:hello-world)
;;           12 printf              prints "Vowels: 3\n"
;;         13 emit_stat
;;           write_stat             (manual)
;;             statsd               (manual) metric vowels.count:1|c
;;         14 emit_log
;;           write_log              (manual)
;;             log_write            (manual) log ERROR "Vowels Counted: 3"
;;
;; Exit code 0.
(module $mixed
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "dylibso:observe/api" "span-enter" (func $span_enter (param i32 i32)))
  (import "dylibso:observe/api" "span-exit" (func $span_exit))
  (import "dylibso:observe/api" "span-tags" (func $span_tags (param i32 i32)))
  (import "dylibso:observe/api" "metric" (func $metric (param i32 i32 i32)))
  (import "dylibso:observe/api" "log" (func $log (param i32 i32 i32)))
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\40\00\00\00\0a\00\00\00")   ;; iovec {64, 10}
  (data (i32.const 64) "Vowels: 3\n")
  (data (i32.const 100) "run")
  (data (i32.const 110) "printf")
  (data (i32.const 120) "vowels:3,input:hello-world")
  (data (i32.const 160) "write_stat")
  (data (i32.const 176) "statsd")
  (data (i32.const 184) "vowels.count:1|c")
  (data (i32.const 208) "write_log")
  (data (i32.const 224) "log_write")
  (data (i32.const 240) "Vowels Counted: 3")
  (data (i32.const 272) "Hello World")

  (func $_start (export "_start")
    (call $enter (i32.const 9))
    (drop (call $main))
    (call $exit (i32.const 9)))

  (func $main (result i32)
    (call $enter (i32.const 10))
    (call $span_enter (i32.const 100) (i32.const 3))            ;; run
    (if (i32.ne (call $count_vowels (i32.const 272) (i32.const 11)) (i32.const 3))
      (then unreachable))
    (call $span_enter (i32.const 110) (i32.const 6))            ;; printf
    (call $span_tags (i32.const 120) (i32.const 26))
    (drop (call $printf (i32.const 0)))
    (call $span_exit)
    (call $emit_stat)
    (call $emit_log)
    (call $span_exit)                                           ;; run
    (call $exit (i32.const 10))
    (i32.const 0))

  (func $count_vowels (param $ptr i32) (param $len i32) (result i32)
    (local $count i32)
    (local $c i32)
    (call $enter (i32.const 11))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $c (i32.or (i32.load8_u (local.get $ptr)) (i32.const 0x20)))
        (if (i32.or
              (i32.or (i32.eq (local.get $c) (i32.const 0x61))     ;; a
                      (i32.eq (local.get $c) (i32.const 0x65)))    ;; e
              (i32.or (i32.eq (local.get $c) (i32.const 0x69))     ;; i
                      (i32.or (i32.eq (local.get $c) (i32.const 0x6f))   ;; o
                              (i32.eq (local.get $c) (i32.const 0x75))))) ;; u
          (then (local.set $count (i32.add (local.get $count) (i32.const 1)))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $next)))
    (call $exit (i32.const 11))
    (local.get $count))

  (func $printf (param $iov i32) (result i32)
    (local $errno i32)
    (call $enter (i32.const 12))
    (local.set $errno
      (call $fd_write (i32.const 1) (local.get $iov) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 12))
    (local.get $errno))

  (func $emit_stat
    (call $enter (i32.const 13))
    (call $span_enter (i32.const 160) (i32.const 10))           ;; write_stat
    (call $span_enter (i32.const 176) (i32.const 6))            ;; statsd
    (call $metric (i32.const 1) (i32.const 184) (i32.const 16))
    (call $span_exit)
    (call $span_exit)
    (call $exit (i32.const 13)))

  (func $emit_log
    (call $enter (i32.const 14))
    (call $span_enter (i32.const 208) (i32.const 9))            ;; write_log
    (call $span_enter (i32.const 224) (i32.const 9))            ;; log_write
    (call $log (i32.const 1) (i32.const 240) (i32.const 17))
    (call $span_exit)
    (call $span_exit)
    (call $exit (i32.const 14))))
