#!/usr/bin/env bash
# A self-signed certificate for the laptop edge (deploy/compose.yaml): deploy/nginx/tls/.
set -euo pipefail
cd "$(dirname "$0")/nginx"
mkdir -p tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout tls/tls.key -out tls/tls.crt
chmod 644 tls/tls.key  # read by NGINX's unprivileged workers in the container
