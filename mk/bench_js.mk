# The JavaScript peer of benchmarks/compare_js.py (issue #14): Dylibso's JS Observe SDK, its
# stdout adapter, run on node by benchmarks/js_peer/run_fib.mjs. Its npm packages
# (@dylibso/observe-sdk-stdout and the other adapters) are not served by the npm registry, so the
# SDK's sources are kept in benchmarks/js_peer/observe-sdk-js (upstream files unchanged, Apache-2.0;
# its README says from which commit) and built here the way upstream builds its ESM package: its
# own esbuild script, with esbuild and commander pinned by benchmarks/js_peer/package-lock.json.
# Optional: `make test` and CI do not depend on it; compare_js.py says to run it when it is missing.
JS_PEER := benchmarks/js_peer
JS_PEER_SDK := $(JS_PEER)/observe-sdk-js
JS_PEER_PKG := $(JS_PEER_SDK)/packages/observe-sdk-stdout
JS_PEER_BUNDLE := $(JS_PEER_PKG)/dist/esm/index.js
JS_PEER_STAMP := $(JS_PEER)/node_modules/.installed

.PHONY: bench-js

bench-js: $(JS_PEER_BUNDLE)

$(JS_PEER_STAMP): $(JS_PEER)/package.json $(JS_PEER)/package-lock.json
	command -v node >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs)
	command -v npm >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm)
	npm ci --prefix $(JS_PEER) --no-audit --no-fund
	touch $@

# dist/esm/package.json marks the bundle as an ES module (upstream's package.json has no "type"),
# so node loads it as one instead of parsing it as CommonJS first.
JS_PEER_SOURCES := $(JS_PEER_SDK)/esbuild/esbuild.js $(JS_PEER_PKG)/index.ts \
	$(wildcard $(JS_PEER_SDK)/src/lib/*.ts $(JS_PEER_SDK)/src/lib/*/*/*.ts $(JS_PEER_SDK)/src/lib/*/*/*/*)

$(JS_PEER_BUNDLE): $(JS_PEER_STAMP) $(JS_PEER_SOURCES)
	cd $(JS_PEER_PKG) && node ../../esbuild/esbuild.js -b -e ./index.ts -o ./dist/esm/index.js -p browser -f esm
	echo '{"type": "module"}' > $(JS_PEER_PKG)/dist/esm/package.json
	test -f $@ && touch $@
