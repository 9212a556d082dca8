"""The Wasm executor of cod_reference: runs one execution of a Wasm job in wasmtime."""
