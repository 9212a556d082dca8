# Views: the browser tests load the HTML trace view, the web UI and speedscope (which reads
# our chrome-trace output) in Debian's headless chromium, driven by selenium (a dev extra)
# through Debian's chromedriver. speedscope comes from npm into a project-local dir and is
# served from 127.0.0.1 by the tests. `make test` depends on `views-browser`; without these
# the browser tests skip, saying why.
VIEWS_TOOLS := .views-tools
SPEEDSCOPE_VERSION := 1.25.0
SPEEDSCOPE_INDEX := $(VIEWS_TOOLS)/node_modules/speedscope/dist/release/index.html

.PHONY: views-browser

views-browser: /usr/bin/chromedriver $(SPEEDSCOPE_INDEX)

/usr/bin/chromedriver:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver

$(SPEEDSCOPE_INDEX):
	command -v npm >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm)
	npm install --prefix $(VIEWS_TOOLS) --no-save --no-audit --no-fund speedscope@$(SPEEDSCOPE_VERSION)
	test -f $@ && touch $@

test: views-browser
