# Adapters: Datadog's ddapm-test-agent in a venv of its own (it pins
# opentelemetry-proto<1.37, which clashes with the project's). `make test`
# depends on `ddagent`; the Datadog tests skip, saying why, without it.
DDAGENT_VENV := .venv-ddagent
DDAGENT_BIN := $(DDAGENT_VENV)/bin/ddapm-test-agent

.PHONY: ddagent

ddagent: $(DDAGENT_BIN)

$(DDAGENT_BIN):
	test -x $(DDAGENT_VENV)/bin/python || $(PY) -m venv $(DDAGENT_VENV)
	$(DDAGENT_VENV)/bin/pip install -q ddapm-test-agent
	test -x $@ && touch $@
