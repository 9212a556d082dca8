;; The in-wasm recorder of observe_sdk (see wasm_recorder.py).
;;
;; The guest's `enter`/`exit`/`memory-grow` imports resolve to the exports of
;; this module, instantiated in the guest's store.  Each call appends one
;; 24-byte record (kind i64, arg i64, t_ns i64) to a buffer in this module's
;; memory - the layout of the host's flat event log, so the host copies the
;; buffer in bulk - with the time from WASI's clock_time_get (realtime: the
;; host's wall clock).  The host's `flush` is called only when the buffer is
;; full; otherwise the host drains the buffer itself, between guest calls.
;;
;; Span filter: enter/exit are paired on a stack here.  A function span that
;; closes shorter than min_ns while something is still open below it (so it
;; is not a root), and whose ENTER record is still in the buffer, is dropped
;; at once: its ENTER record is cut out and what it held (allocations) stays
;; where it is, i.e. moves up to its parent - what the host's assembler would
;; do.  Anything else (exits that unwind, unknown exits, spans whose ENTER the
;; host took already) is recorded as is and left to the assembler.
;;
;; The host reads and writes the control block directly (no calls into this
;; module): it drains the buffer, pushes/pops manual-span markers so that the
;; stack mirrors the assembler's, empties the stack on END, and applies the
;; event cap to its own events.  The memory never grows, so its address stays.
;;
;; Event cap: `remaining` events may still be recorded (host events and records
;; alike).  The first refused event sets `capped`; from then on every event of
;; the trace is counted in `dropped`, as with the Python recorder.
;;
;; Should the stack fill up (a recursion deeper than ~54,000 calls), the
;; recorder turns `passthrough` for the rest of the trace: every event is
;; recorded as is and the assembler does all the pairing and filtering.
;;
;; Control block (offsets; the host mirrors this layout in wasm_recorder.py and
;; sets every field before the first guest call):
;;   0 i64 clock scratch     8 i32 len (records in the buffer)
;;  12 i32 capped           16 i64 flushed (records handed over so far)
;;  24 i64 remaining        32 i64 dropped     40 i64 min_ns
;;  48 i32 sp (stack top)   52 i32 passthrough   56 i32 cap (buffer capacity, <= 32768)
;; Buffer: up to 32768 records from 64.  Stack: 24-byte frames
;;   (i32 function index, i32 unused, i64 start, i64 ENTER position or -1);
;;   a manual span is a frame of index -1, as in the assembler (where any
;;   negative index is a manual frame: exit(-1) closes one, and so does a
;;   span-exit close a frame that enter(-1) opened).
;; from 786496 (STACK) to the end of memory (STACK_END, 2 MiB).
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "observe_sdk" "flush" (func $flush (param i32)))

  (memory (export "memory") 32 32)

  (func $now (export "now") (result i64)
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))

  ;; Append a record; its absolute position, or -1 when the event cap refused it.
  (func $emit (param $kind i32) (param $arg i32) (param $t i64) (result i64)
    (local $len i32) (local $at i32)
    (if (i32.load (i32.const 12))
      (then (i64.store (i32.const 32) (i64.add (i64.load (i32.const 32)) (i64.const 1)))
            (return (i64.const -1))))
    (if (i64.le_s (i64.load (i32.const 24)) (i64.const 0))
      (then (i32.store (i32.const 12) (i32.const 1))
            (i64.store (i32.const 32) (i64.add (i64.load (i32.const 32)) (i64.const 1)))
            (return (i64.const -1))))
    (i64.store (i32.const 24) (i64.sub (i64.load (i32.const 24)) (i64.const 1)))
    (local.set $len (i32.load (i32.const 8)))
    (if (i32.ge_u (local.get $len) (i32.load (i32.const 56)))
      (then (call $flush (local.get $len))
            (i64.store (i32.const 16) (i64.add (i64.load (i32.const 16)) (i64.extend_i32_u (local.get $len))))
            (local.set $len (i32.const 0))))
    (local.set $at (i32.add (i32.const 64) (i32.mul (local.get $len) (i32.const 24))))
    (i64.store (local.get $at) (i64.extend_i32_u (local.get $kind)))
    (i64.store offset=8 (local.get $at) (i64.extend_i32_s (local.get $arg)))
    (i64.store offset=16 (local.get $at) (local.get $t))
    (i32.store (i32.const 8) (i32.add (local.get $len) (i32.const 1)))
    (i64.add (i64.load (i32.const 16)) (i64.extend_i32_u (local.get $len))))

  (func (export "enter") (param $idx i32)
    (local $t i64) (local $pos i64) (local $sp i32)
    (local.set $t (call $now))
    (local.set $pos (call $emit (i32.const 1) (local.get $idx) (local.get $t)))
    (if (i32.load (i32.const 52)) (then (return)))
    (local.set $sp (i32.load (i32.const 48)))
    (if (i32.gt_u (local.get $sp) (i32.const 2097128))   ;; STACK_END - 24: full
      (then (i32.store (i32.const 52) (i32.const 1))
            (i32.store (i32.const 48) (i32.const 786496))
            (return)))
    (i32.store (local.get $sp) (local.get $idx))
    (i64.store offset=8 (local.get $sp) (local.get $t))
    (i64.store offset=16 (local.get $sp) (local.get $pos))
    (i32.store (i32.const 48) (i32.add (local.get $sp) (i32.const 24))))

  (func (export "memory-grow") (param $pages i32)
    (drop (call $emit (i32.const 3) (local.get $pages) (call $now))))

  (func (export "exit") (param $idx i32)
    (local $t i64) (local $top i32) (local $pos i64) (local $p i32) (local $tail i32) (local $len i32)
    (local.set $t (call $now))
    (local.set $top (i32.sub (i32.load (i32.const 48)) (i32.const 24)))
    (if (i32.lt_s (local.get $top) (i32.const 786496))
      (then ;; nothing open (or passthrough): recorded as is
        (drop (call $emit (i32.const 2) (local.get $idx) (local.get $t)))
        (return)))
    (if (i32.eq (i32.load (local.get $top)) (local.get $idx))
      (then ;; the innermost span closes normally
        (i32.store (i32.const 48) (local.get $top))
        (if (i32.load (i32.const 12))
          (then (i64.store (i32.const 32) (i64.add (i64.load (i32.const 32)) (i64.const 1)))
                (return)))
        (local.set $pos (i64.load offset=16 (local.get $top)))
        (if (i32.and
              (i32.and (i64.ge_s (local.get $pos) (i64.load (i32.const 16)))
                       (i32.gt_u (local.get $top) (i32.const 786496)))
              (i64.lt_s (i64.sub (local.get $t) (i64.load offset=8 (local.get $top)))
                        (i64.load (i32.const 40))))
          (then ;; short, not a root, its ENTER still buffered: cut the ENTER out
            (local.set $len (i32.load (i32.const 8)))
            (local.set $p (i32.wrap_i64 (i64.sub (local.get $pos) (i64.load (i32.const 16)))))
            (local.set $tail (i32.sub (i32.sub (local.get $len) (local.get $p)) (i32.const 1)))
            (if (local.get $tail)
              (then (memory.copy
                      (i32.add (i32.const 64) (i32.mul (local.get $p) (i32.const 24)))
                      (i32.add (i32.const 88) (i32.mul (local.get $p) (i32.const 24)))
                      (i32.mul (local.get $tail) (i32.const 24)))))
            (i32.store (i32.const 8) (i32.sub (local.get $len) (i32.const 1)))
            (i64.store (i32.const 24) (i64.add (i64.load (i32.const 24)) (i64.const 1)))
            (return)))
        (drop (call $emit (i32.const 2) (local.get $idx) (local.get $t)))
        (return)))
    ;; not the innermost span: the assembler ends the nearest open frame of this
    ;; function, closes the function frames above it as errors and keeps the manual
    ;; frames above it open (they outlive it); or it ignores the exit
    (block $done
      (loop $search
        (br_if $done (i32.lt_s (local.get $top) (i32.const 786496)))
        (if (i32.eq (i32.load (local.get $top)) (local.get $idx))
          (then (call $keep_manual_above (local.get $top) (local.get $idx))
                (br $done)))
        (local.set $top (i32.sub (local.get $top) (i32.const 24)))
        (br $search)))
    (drop (call $emit (i32.const 2) (local.get $idx) (local.get $t))))

  ;; Drop the frame at $at and every frame above it but the manual ones (when
  ;; $idx is a function's), which move down in order; the stack top follows.
  (func $keep_manual_above (param $at i32) (param $idx i32)
    (local $src i32) (local $sp i32)
    (local.set $sp (i32.load (i32.const 48)))
    (local.set $src (i32.add (local.get $at) (i32.const 24)))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $src) (local.get $sp)))
        (if (i32.and (i32.lt_s (i32.load (local.get $src)) (i32.const 0))
                     (i32.ge_s (local.get $idx) (i32.const 0)))
          (then (memory.copy (local.get $at) (local.get $src) (i32.const 24))
                (local.set $at (i32.add (local.get $at) (i32.const 24)))))
        (local.set $src (i32.add (local.get $src) (i32.const 24)))
        (br $copy)))
    (i32.store (i32.const 48) (local.get $at)))
)
