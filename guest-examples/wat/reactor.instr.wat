;; reactor.instr: a reactor, instrumented by hand. No WASI; imports 0..2
;; are the instrument namespace. Functions:
;;
;;   3 _initialize -> 4 init            sets the `ready` flag
;;   5 add(a, b) -> 6 sum(a, b)         returns a + b; traps (unreachable)
;;                                      if _initialize has not run
;;
;; A host runs `_initialize` once, then calls `add` as often as it likes:
;; each call is one more root of the trace.
(module $reactor
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))

  (func $_initialize (export "_initialize")
    (call $enter (i32.const 3))
    (call $init)
    (call $exit (i32.const 3)))

  (func $init
    (call $enter (i32.const 4))
    (global.set $ready (i32.const 1))
    (call $exit (i32.const 4)))

  (func $add (export "add") (param $a i32) (param $b i32) (result i32)
    (local $r i32)
    (call $enter (i32.const 5))
    (if (i32.eqz (global.get $ready)) (then unreachable))
    (local.set $r (call $sum (local.get $a) (local.get $b)))
    (call $exit (i32.const 5))
    (local.get $r))

  (func $sum (param $a i32) (param $b i32) (result i32)
    (call $enter (i32.const 6))
    (call $exit (i32.const 6))
    (i32.add (local.get $a) (local.get $b))))
