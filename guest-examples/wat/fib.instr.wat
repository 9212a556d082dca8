;; fib.instr: recursive fib, instrumented by hand as the instrumenting
;; compiler would do it. No WASI. Imports 0..2 are the instrument
;; namespace, so $fib is function 3 and $_start function 4.
;;
;;   _start (4) -> fib (3) -> fib -> ...       fib(20): 21891 fib spans
;;
;; Exports `fib(n) -> i32` (call it directly for benchmarks; fib(25) makes
;; 242785 calls) and `_start`, which computes fib(20) and traps if the result
;; is not 6765. Also exports the instrumenter's version globals (0.1), which
;; a host must accept.
(module $fib
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (global (export "wasm_instr_version_major") i32 (i32.const 0))
  (global (export "wasm_instr_version_minor") i32 (i32.const 1))

  (func $fib (export "fib") (param $n i32) (result i32)
    (local $result i32)
    (call $enter (i32.const 3))
    (if (i32.lt_s (local.get $n) (i32.const 2))
      (then
        (call $exit (i32.const 3))
        (return (local.get $n))))
    (local.set $result
      (i32.add
        (call $fib (i32.sub (local.get $n) (i32.const 1)))
        (call $fib (i32.sub (local.get $n) (i32.const 2)))))
    (call $exit (i32.const 3))
    (local.get $result))

  (func $_start (export "_start")
    (call $enter (i32.const 4))
    (if (i32.ne (call $fib (i32.const 20)) (i32.const 6765))
      (then unreachable))
    (call $exit (i32.const 4))))
