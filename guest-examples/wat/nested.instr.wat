;; nested.instr: the chain of the spec, instrumented by hand. One WASI
;; import (0) comes first; the instrument imports are appended after it
;; (enter=1, exit=2, memory-grow=3), so the functions are:
;;
;;   4 _start -> 5 main -> 6 one -> 7 two -> 8 three -> 9 printf
;;
;; Prints "Hello from three!\n", exit code 0. The functions leave in
;; different ways, as compiled code does: `one` by falling off the end,
;; `two` by a branch to its outermost block, `three` by an early `return`.
(module $nested
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\10\00\00\00\12\00\00\00")
  (data (i32.const 16) "Hello from three!\n")

  (func $_start (export "_start")
    (call $enter (i32.const 4))
    (drop (call $main))
    (call $exit (i32.const 4)))

  (func $main (result i32)
    (call $enter (i32.const 5))
    (call $one)
    (call $exit (i32.const 5))
    (i32.const 0))

  (func $one
    (call $enter (i32.const 6))
    (call $two)
    (call $exit (i32.const 6)))

  (func $two
    (call $enter (i32.const 7))
    (block $out
      (call $three (i32.const 1))
      (call $exit (i32.const 7))
      (br $out))
    )

  (func $three (param $print i32)
    (call $enter (i32.const 8))
    (if (local.get $print)
      (then
        (drop (call $printf (i32.const 0)))
        (call $exit (i32.const 8))
        (return)))
    (call $exit (i32.const 8)))

  ;; writes the iovec at $iov to stdout; returns the errno
  (func $printf (param $iov i32) (result i32)
    (local $errno i32)
    (call $enter (i32.const 9))
    (local.set $errno
      (call $fd_write (i32.const 1) (local.get $iov) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 9))
    (local.get $errno)))
