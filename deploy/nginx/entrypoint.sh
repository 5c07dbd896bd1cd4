#!/bin/sh
# Starts nginx in the foreground. Without a certificate yet (the Let's Encrypt mode's first
# start), it makes a temporary self-signed one so that nginx can serve the ACME challenge; and it
# reloads nginx within a minute of the certificate changing (certbot's renewals, or an operator
# copying a new pair into CW_CERT_PATH).
set -eu
certs=/etc/nginx/certs
if [ ! -s "$certs/fullchain.pem" ] || [ ! -s "$certs/privkey.pem" ]; then
    echo "cw-nginx: no certificate in CW_CERT_PATH yet; a temporary self-signed one until certbot's arrives" >&2
    openssl req -x509 -nodes -newkey rsa:2048 -days 7 -subj "/CN=${CW_DOMAIN:-localhost}" \
        -keyout "$certs/privkey.pem" -out "$certs/fullchain.pem" 2>/dev/null
fi
stamp() { stat -c "%i %s %y" "$certs/fullchain.pem" "$certs/privkey.pem" 2>/dev/null || true; }
(
    last=$(stamp)
    while sleep "${CW_CERT_CHECK_SECONDS:-60}"; do
        now=$(stamp)
        if [ "$now" != "$last" ]; then
            echo "cw-nginx: the certificate changed; reloading" >&2
            nginx -s reload || true
            last=$now
        fi
    done
) &
exec nginx -g 'daemon off;'
