import * as wasm from "./modsurfer_demangle_bg.wasm";
import { __wbg_set_wasm } from "./modsurfer_demangle_bg.js";
__wbg_set_wasm(wasm);
export * from "./modsurfer_demangle_bg.js";
