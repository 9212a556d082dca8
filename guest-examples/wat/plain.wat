;; plain: no Observe import at all. A WASI command that prints "plain\n"
;; and returns (exit code 0). Under the SDK it runs unchanged and yields no
;; spans.
(module $plain
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: {ptr=16, len=6}; text at 16
  (data (i32.const 0) "\10\00\00\00\06\00\00\00")
  (data (i32.const 16) "plain\n")
  (func $_start (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
