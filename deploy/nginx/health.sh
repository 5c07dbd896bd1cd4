#!/bin/sh
# Healthy when nginx answers over TLS and a queue manager answers behind it.
exec curl -fsk --max-time 4 -o /dev/null https://127.0.0.1/healthz
