# The JavaScript peer of benchmarks/compare_js.py (issue #14): Dylibso's JS Observe SDK, its
# stdout adapter, run on node by benchmarks/js_peer/run_fib.mjs. Its npm packages
# (@dylibso/observe-sdk-stdout and the other adapters) are not served by the npm registry, so its
# js/ directory is taken from a git clone of github.com/dylibso/observe-sdk (JS_SDK_GIT, a bare or
# ordinary clone) at JS_SDK_COMMIT into benchmarks/js_peer/observe-sdk-js (not kept in this
# repository) and built the way upstream builds its ESM package: its own esbuild script, with
# esbuild and commander pinned by benchmarks/js_peer/package-lock.json.
# Optional: `make test` and CI do not depend on it; compare_js.py says to run it when it is missing.
JS_PEER := benchmarks/js_peer
JS_PEER_SDK := $(JS_PEER)/observe-sdk-js
JS_PEER_PKG := $(JS_PEER_SDK)/packages/observe-sdk-stdout
JS_PEER_BUNDLE := $(JS_PEER_PKG)/dist/esm/index.js
JS_PEER_STAMP := $(JS_PEER)/node_modules/.installed
JS_SDK_GIT ?= $(firstword $(wildcard ../.mirror/dylibso+observe-sdk/repo) .js-sdk/observe-sdk.git)
JS_SDK_COMMIT ?= 9145d8ad07e1280000354f3210f0283a1ce49ccd
JS_PEER_SOURCES_STAMP := $(JS_PEER_SDK)/.commit-$(JS_SDK_COMMIT)

.PHONY: bench-js

bench-js: $(JS_PEER_BUNDLE)

$(JS_PEER_SOURCES_STAMP):
	test -d $(JS_SDK_GIT) || (echo "no clone of the JS SDK at $(JS_SDK_GIT): git clone --bare \
	https://github.com/dylibso/observe-sdk $(JS_SDK_GIT), or make bench-js JS_SDK_GIT=<a clone>" && exit 2)
	rm -rf $(JS_PEER_SDK) && mkdir -p $(JS_PEER_SDK)
	git --git-dir=$$(git -C $(JS_SDK_GIT) rev-parse --absolute-git-dir) archive $(JS_SDK_COMMIT) js \
		| tar -x -C $(JS_PEER_SDK) --strip-components=1
	touch $@

$(JS_PEER_STAMP): $(JS_PEER)/package.json $(JS_PEER)/package-lock.json $(JS_PEER_SOURCES_STAMP)
	command -v node >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs)
	command -v npm >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm)
	npm ci --prefix $(JS_PEER) --no-audit --no-fund
	touch $@

# dist/esm/package.json marks the bundle as an ES module (upstream's package.json has no "type"),
# so node loads it as one instead of parsing it as CommonJS first.
$(JS_PEER_BUNDLE): $(JS_PEER_STAMP)
	cd $(JS_PEER_PKG) && node ../../esbuild/esbuild.js -b -e ./index.ts -o ./dist/esm/index.js -p browser -f esm
	echo '{"type": "module"}' > $(JS_PEER_PKG)/dist/esm/package.json
	test -f $@ && touch $@
