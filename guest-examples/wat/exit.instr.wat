;; exit.instr: WASI proc_exit(3) called with spans open. Imports:
;; proc_exit 0, span-enter 1, span-exit 2, enter 3, exit 4, memory-grow 5.
;;
;;   6 _start -> 7 main -> shutdown (manual) -> 8 quit -> proc_exit(3)
;;
;; The process exits with code 3 (wasmtime raises ExitTrap); open at that
;; moment: quit, shutdown, main, _start.
(module $exit
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "dylibso:observe/api" "span-enter" (func $span_enter (param i32 i32)))
  (import "dylibso:observe/api" "span-exit" (func $span_exit))
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "shutdown")        ;; 8 bytes

  (func $_start (export "_start")
    (call $enter (i32.const 6))
    (call $main)
    (call $exit (i32.const 6)))

  (func $main
    (call $enter (i32.const 7))
    (call $span_enter (i32.const 0) (i32.const 8))
    (call $quit (i32.const 3))
    (call $span_exit)
    (call $exit (i32.const 7)))

  (func $quit (param $code i32)
    (call $enter (i32.const 8))
    (call $proc_exit (local.get $code))
    (call $exit (i32.const 8))))
