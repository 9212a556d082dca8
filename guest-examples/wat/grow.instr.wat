;; grow.instr: memory growth reported through memory-grow, instrumented by
;; hand. No WASI; imports 0..2 are the instrument namespace.
;;
;;   3 _start  (not instrumented, as if excluded): memory-grow(1) with no
;;             span open -> a root allocation event; then calls main
;;   4 main -> 5 allocate(2) -> 6 grow_pages(2)    memory-grow(2)
;;          -> 5 allocate(3) -> 6 grow_pages(3)    memory-grow(3)
;;
;; Memory starts at 1 page and ends at 7 pages (exported `memory`); each
;; memory-grow is called just before its memory.grow, with the same operand.
;; grow_pages is tiny, so a min-duration filter drops it (and maybe
;; allocate): its allocations must move up to main.
(module $grow
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $memory_grow (param i32)))
  (memory (export "memory") 1)

  (func $_start (export "_start")
    (call $memory_grow (i32.const 1))
    (if (i32.lt_s (memory.grow (i32.const 1)) (i32.const 0)) (then unreachable))
    (call $main))

  (func $main
    (call $enter (i32.const 4))
    (call $allocate (i32.const 2))
    (call $allocate (i32.const 3))
    (call $exit (i32.const 4)))

  (func $allocate (param $pages i32)
    (call $enter (i32.const 5))
    (if (i32.lt_s (call $grow_pages (local.get $pages)) (i32.const 0))
      (then unreachable))
    (call $exit (i32.const 5)))

  ;; returns the old size in pages, or -1
  (func $grow_pages (param $pages i32) (result i32)
    (local $old i32)
    (call $enter (i32.const 6))
    (call $memory_grow (local.get $pages))
    (local.set $old (memory.grow (local.get $pages)))
    (call $exit (i32.const 6))
    (local.get $old)))
