// Dylibso's JavaScript Observe SDK (its stdout adapter) on one WASI command module, the way
// the SDK's own node test (js/packages/observe-sdk-stdout/test/node/index.js) runs it:
//
//     node benchmarks/js_peer/run_fib.mjs guest-examples/build/fib.instr.wasm 25 > /dev/null
//
// The module's name and the arguments after it become the guest's argv ("fib.instr.wasm 25").
// The SDK collects every span in memory while `_start` runs; `traceContext.stop()` then hands
// the trace to the adapter, which prints one line per span with console.log to stdout (the
// guest's own stdout goes there too). Its span filter is set to 0 us, like our `--min-span-us 0`
// (the SDK's default is 20 us). Built by `make bench-js`; timed by benchmarks/compare_js.py.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import process from "node:process";
import { WASI } from "node:wasi";

import { StdOutAdapter } from "@dylibso/observe-sdk-stdout";

const [modulePath, ...guestArgs] = process.argv.slice(2);
if (!modulePath) {
  console.error("usage: node run_fib.mjs MODULE.wasm [GUEST ARGS...]");
  process.exit(2);
}

const bytes = readFileSync(modulePath);
const wasi = new WASI({
  version: "preview1",
  args: [basename(modulePath), ...guestArgs],
  env: {},
  returnOnExit: true,
});

// The SDK instantiates its name demangler (a wasm module of its own) asynchronously when it is
// imported, and `start` demangles every function name: started before that instantiation is
// done, it throws "wasm.__wbindgen_... is not a function". Wait for it (a few ms) and retry.
async function startAdapter(adapter, options) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await adapter.start(bytes, options);
    } catch (error) {
      if (!(error instanceof TypeError) || attempt >= 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

const adapter = new StdOutAdapter();
const traceContext = await startAdapter(adapter, {
  spanFilter: { minDurationMicroseconds: 0 },
});
const module = new WebAssembly.Module(bytes);
const instance = await WebAssembly.instantiate(module, {
  ...wasi.getImportObject(),
  ...traceContext.getImportObject(),
});
const exitCode = wasi.start(instance);
traceContext.stop();
process.exitCode = exitCode;
