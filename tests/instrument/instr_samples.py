"""WAT modules exercising each proposal the instrumenter supports.

Each sample: name -> (wat, calls, runnable).  ``calls`` are (export, args) whose results
must be the same before and after instrumentation; ``runnable`` is False where wasmtime
cannot execute the module (legacy exception handling), which is then only validated.
"""
from __future__ import annotations

SAMPLES: dict[str, tuple[str, list[tuple[str, tuple]], bool]] = {}


def sample(name: str, calls: list[tuple[str, tuple]], runnable: bool = True):
    def register(wat: str) -> str:
        SAMPLES[name] = (wat, calls, runnable)
        return wat
    return register


sample("mvp_control", [("sel", (i,)) for i in range(5)] + [("loop", (10,)), ("ind", (0,)), ("ind", (1,)),
                                                            ("grow", (2,)), ("early", (0,)), ("early", (5,))])("""
(module
  (type $r (func (result i32)))
  (memory 1 10)
  (table 2 funcref)
  (elem (i32.const 0) $a $b)
  (global $g (mut i32) (i32.const 0))
  (start $init)
  (func $init (global.set $g (i32.const 5)))
  (func $a (result i32) (i32.const 10))
  (func $b (result i32) (i32.add (global.get $g) (i32.const 20)))
  (func $sel (export "sel") (param $x i32) (result i32)
    (block $b0 (result i32)
      (block $b1 (result i32)
        i32.const 100
        local.get $x
        br_table $b1 $b0 2 $b0)
      i32.const 1
      i32.add
      return)
    i32.const 2
    i32.add)
  (func $loop (export "loop") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc)
    (br_if 0 (i32.eqz (i32.const 0)))
    drop
    i32.const -1)
  (func $ind (export "ind") (param i32) (result i32)
    (call_indirect (type $r) (local.get 0)))
  (func $grow (export "grow") (param i32) (result i32)
    (drop (memory.grow (local.get 0)))
    (memory.grow (i32.const 0)))
  (func $early (export "early") (param i32) (result i32)
    (if (i32.eqz (local.get 0)) (then (return (i32.const 42))))
    (if (result i32) (i32.gt_u (local.get 0) (i32.const 3))
      (then (br 1 (i32.const 7)))
      (else (i32.const 8))))
)""")

sample("multi_value", [("pair", (3,)), ("swap", (1, 2)), ("pick", (0,)), ("pick", (1,))])("""
(module
  (func $pair (export "pair") (param i32) (result i32 i64)
    (local.get 0) (i64.extend_i32_u (local.get 0))
    (br_if 0 (i32.const 1)))
  (func $swap (export "swap") (param i32 i32) (result i32 i32)
    (local.get 1) (local.get 0))
  (func $pick (export "pick") (param i32) (result i32 i32 i32)
    (i32.const 1) (i32.const 2)
    (block (param i32 i32) (result i32 i32 i32)
      (i32.const 3)
      (br_if 1 (local.get 0))
      (return))
  )
)""")

sample("numeric_ext", [("ext", (0x80,)), ("sat", ())])("""
(module
  (func (export "ext") (param i32) (result i32)
    (i32.add (i32.extend8_s (local.get 0)) (i32.extend16_s (local.get 0))))
  (func (export "sat") (result i64)
    (i64.add (i64.trunc_sat_f64_s (f64.const 1e30)) (i64.extend32_s (i64.const 0xffffffff))))
)""")

sample("bulk_memory", [("run", ())])("""
(module
  (memory 1)
  (data $d "hello, world")
  (table 4 funcref)
  (elem $e func $f1 $f2)
  (func $f1 (result i32) (i32.const 1))
  (func $f2 (result i32) (i32.const 2))
  (func (export "run") (result i32)
    (memory.init $d (i32.const 16) (i32.const 0) (i32.const 12))
    (data.drop $d)
    (memory.copy (i32.const 64) (i32.const 16) (i32.const 12))
    (memory.fill (i32.const 0) (i32.const 7) (i32.const 4))
    (table.init $e (i32.const 0) (i32.const 0) (i32.const 2))
    (elem.drop $e)
    (table.copy (i32.const 2) (i32.const 0) (i32.const 2))
    (i32.add (i32.load8_u (i32.const 68))
      (i32.add (i32.load8_u (i32.const 3)) (call_indirect (result i32) (i32.const 3)))))
)""")

sample("reference_types", [("run", ()), ("pick", (1,)), ("pick", (0,))])("""
(module
  (type $r (func (result i32)))
  (table $t 1 funcref)
  (table $ext 1 externref)
  (global $gf funcref (ref.func $one))
  (elem declare func $two)
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func (export "run") (result i32)
    (drop (table.grow $t (ref.func $two) (i32.const 2)))
    (table.set $t (i32.const 0) (global.get $gf))
    (table.fill $t (i32.const 1) (ref.null func) (i32.const 1))
    (i32.add (call_indirect $t (type $r) (i32.const 0))
      (i32.add (table.size $t) (ref.is_null (table.get $ext (i32.const 0))))))
  (func (export "pick") (param i32) (result i32)
    (call_indirect $t (type $r)
      (i32.const 0)
      (drop (select (result funcref) (ref.func $one) (ref.func $two) (local.get 0)))))
)""")

sample("simd", [("run", ()), ("relaxed", ())])("""
(module
  (memory 1)
  (func (export "run") (result i32) (local v128)
    (local.set 0 (i32x4.add (v128.const i32x4 1 2 3 4) (i32x4.splat (i32.const 10))))
    (v128.store (i32.const 0) (local.get 0))
    (local.set 0 (v128.load32_lane 1 (i32.const 4) (local.get 0)))
    (local.set 0 (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get 0) (local.get 0)))
    (v128.store64_lane 0 (i32.const 32) (local.get 0))
    (i32.add (i32x4.extract_lane 1 (local.get 0))
      (i32.add (i32.load (i32.const 32)) (i32x4.extract_lane 0 (v128.load32_zero (i32.const 8))))))
  (func (export "relaxed") (result i32)
    (i32x4.extract_lane 0
      (i32x4.relaxed_trunc_f32x4_s (f32x4.relaxed_madd (v128.const f32x4 1 2 3 4) (v128.const f32x4 2 2 2 2)
                                                       (v128.const f32x4 1 1 1 1)))))
)""")

sample("threads", [("run", ())])("""
(module
  (memory 1 1 shared)
  (func (export "run") (result i32)
    (i32.atomic.store (i32.const 0) (i32.const 5))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 3)))
    (drop (i64.atomic.rmw.cmpxchg (i32.const 8) (i64.const 0) (i64.const 9)))
    (atomic.fence)
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 1) (i64.const 0)))
    (i32.add (i32.atomic.load (i32.const 0)) (i32.wrap_i64 (i64.atomic.load (i32.const 8)))))
)""")

sample("tail_calls", [("count", (50,)), ("ind", (4,)), ("viaref", (3,))])("""
(module
  (type $t (func (param i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $down)
  (elem declare func $down)
  (func $count (export "count") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 100))
      (else (return_call $count (i32.sub (local.get 0) (i32.const 1))))))
  (func $down (param i32) (result i32)
    (if (i32.eqz (local.get 0)) (then (return (i32.const 7))))
    (return_call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0)))
  (func (export "ind") (param i32) (result i32) (return_call $down (local.get 0)))
  (func (export "viaref") (param i32) (result i32)
    (return_call_ref $t (local.get 0) (ref.func $down)))
)""")

sample("exceptions", [("run", (0,)), ("run", (1,)), ("uncaught", ())])("""
(module
  (tag $e (param i32))
  (func $thrower (param i32) (result i32)
    (if (local.get 0) (then (throw $e (i32.const 42))))
    (i32.const 1))
  (func $middle (param i32) (result i32) (i32.add (call $thrower (local.get 0)) (i32.const 1)))
  (func (export "run") (param i32) (result i32)
    (block $h (result i32)
      (try_table (result i32) (catch $e $h)
        (call $middle (local.get 0)))
      (return))
    (i32.const 1000)
    (i32.add))
  (func (export "uncaught") (result i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h) (drop (call $middle (i32.const 1))))
      (return (i32.const 0)))
    (throw_ref))
)""")

sample("legacy_exceptions", [], runnable=False)("""
(module
  (tag $e (param i32))
  (func $thrower (param i32) (result i32)
    (if (local.get 0) (then (throw $e (i32.const 42))))
    (i32.const 1))
  (func (export "run") (param i32) (result i32)
    try (result i32)
      local.get 0
      call $thrower
    catch $e
      i32.const 1000
      i32.add
    catch_all
      i32.const -1
    end)
  (func (export "again") (param i32) (result i32)
    try $outer (result i32)
      try (result i32)
        local.get 0
        call $thrower
      delegate $outer
    catch_all
      try
        rethrow 1
      catch_all
      end
      i32.const 5
    end)
  (func (export "to_caller") (param i32) (result i32)
    try (result i32)
      local.get 0
      call $thrower
    delegate 0)
)""")

sample("multi_memory", [("run", (1,))])("""
(module
  (memory $a 1)
  (memory $b 1 4)
  (func (export "run") (param i32) (result i32)
    (i32.store $b (i32.const 100) (i32.const 7))
    (drop (memory.grow $b (local.get 0)))
    (memory.copy $a $b (i32.const 0) (i32.const 100) (i32.const 4))
    (i32.add (i32.load $a (i32.const 0)) (i32.add (memory.size $b) (memory.size $a))))
)""")

sample("memory64", [("run", ())])("""
(module
  (memory i64 1)
  (memory $m32 1)
  (func (export "run") (result i64)
    (i64.store (i64.const 8) (i64.const 99))
    (drop (memory.grow $m32 (i32.const 1)))
    (i64.add (memory.grow (i64.const 2)) (i64.add (memory.size) (i64.load offset=8 (i64.const 0)))))
)""")

sample("extended_const", [("run", ())])("""
(module
  (global $base i32 (i32.const 10))
  (global $g i32 (i32.add (global.get $base) (i32.mul (i32.const 3) (i32.const 4))))
  (global $h i64 (i64.sub (i64.const 100) (i64.const 1)))
  (memory 1)
  (data (i32.add (global.get $base) (i32.const 6)) "x")
  (func (export "run") (result i32)
    (i32.add (i32.add (global.get $g) (i32.wrap_i64 (global.get $h))) (i32.load8_u (i32.const 16))))
)""")

sample("function_references", [("run", (5,)), ("nulls", ())])("""
(module
  (type $f (func (param i32) (result i32)))
  (table $t 1 (ref null $f))
  (table $typed 1 (ref $f) (ref.func $double))
  (elem declare func $double $inc)
  (global $gf (ref $f) (ref.func $inc))
  (func $double (type $f) (i32.mul (local.get 0) (i32.const 2)))
  (func $inc (type $f) (i32.add (local.get 0) (i32.const 1)))
  (func (export "run") (param i32) (result i32)
    (call_ref $f (call_ref $f (local.get 0) (global.get $gf))
                 (ref.as_non_null (ref.func $double))))
  (func (export "nulls") (result i32)
    (block $isnull
      (br_on_null $isnull (table.get $t (i32.const 0)))
      (drop)
      (return (i32.const 1)))
    (i32.const 3)
    (block $nonnull (result (ref $f))
      (br_on_non_null $nonnull (table.get $typed (i32.const 0)))
      (return (i32.const 2)))
    (call_ref $f))
)""")

sample("wide_arithmetic", [("wide", (1, 2, 3, 4)), ("mul", (-1, 3))])("""
(module
  (func (export "wide") (param i64 i64 i64 i64) (result i64 i64)
    (i64.add128 (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "mul") (param i64 i64) (result i64 i64)
    (i64.mul_wide_s (local.get 0) (local.get 1))))
""")

sample("gc", [("run", (4,)), ("cast", (0,)), ("cast", (1,)), ("typed_result", (3,)), ("typed_result", (0,))])("""
(module
  (rec
    (type $node (struct (field $v i32) (field $next (ref null $node))))
    (type $list (func (param (ref null $node)) (result i32))))
  (type $arr (array (mut i32)))
  (type $bytes (array i8))
  (type $point (sub (struct (field i32))))
  (type $point3 (sub final $point (struct (field i32) (field i32))))
  (data $d "\\01\\02\\03")
  (func $sum (type $list)
    (if (result i32) (ref.is_null (local.get 0))
      (then (i32.const 0))
      (else (i32.add (struct.get $node $v (local.get 0))
                     (return_call $sum (struct.get $node $next (local.get 0)))))))
  (func (export "run") (param i32) (result i32) (local $a (ref null $arr))
    (local.set $a (array.new $arr (i32.const 3) (local.get 0)))
    (array.set $arr (local.get $a) (i32.const 1) (i32.const 10))
    (array.fill $arr (local.get $a) (i32.const 2) (i32.const 5) (i32.const 1))
    (i32.add
      (call $sum (struct.new $node (i32.const 1) (struct.new $node (i32.const 2) (ref.null $node))))
      (i32.add (array.get $arr (local.get $a) (i32.const 1))
        (i32.add (array.len (array.new_data $bytes $d (i32.const 0) (i32.const 3)))
                 (i31.get_s (ref.i31 (i32.const -5)))))))
  (func (export "cast") (param i32) (result i32) (local $p (ref null $point))
    (local.set $p (if (result (ref $point)) (local.get 0)
      (then (struct.new $point3 (i32.const 1) (i32.const 2)))
      (else (struct.new $point (i32.const 1)))))
    (block $is3 (result (ref $point3))
      (br_on_cast $is3 (ref null $point) (ref $point3) (local.get $p))
      (drop)
      (return (i32.add (i32.const 100) (ref.test (ref $point3) (local.get $p)))))
    (struct.get $point3 1)
    (drop (ref.cast (ref $point) (local.get $p)))
    (drop (any.convert_extern (extern.convert_any (local.get $p)))))
  (func $make (param i32) (result (ref null $node) (ref $arr))
    (if (i32.eqz (local.get 0)) (then (return (ref.null $node) (array.new_default $arr (i32.const 1)))))
    (struct.new $node (local.get 0) (ref.null $node))
    (array.new_fixed $arr 2 (i32.const 5) (i32.const 6))
    (br 0))
  (func $one_ref (param i32) (result (ref null $node))
    (drop (br_if 0 (ref.null $node) (i32.eqz (local.get 0))))
    (struct.new $node (local.get 0) (ref.null $node)))
  (func (export "typed_result") (param i32) (result i32) (local $a (ref null $arr)) (local $n (ref null $node))
    (call $make (local.get 0))
    (local.set $a)
    (local.set $n)
    (i32.add
      (struct.get $node $v (call $one_ref (i32.const 9)))
      (i32.add (array.len (local.get $a))
        (if (result i32) (ref.is_null (local.get $n))
          (then (i32.const 0))
          (else (struct.get $node $v (local.get $n)))))))
)""")
