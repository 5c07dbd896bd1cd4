#!/bin/sh
# The certbot service (profile letsencrypt): a certificate for CW_DOMAIN through nginx's webroot
# (/.well-known/acme-challenge/ served from the shared acme-webroot volume), renewed twice a day;
# each new pair is copied into CW_CERT_PATH, where the nginx container sees it and reloads.
set -u
: "${CW_DOMAIN:?set CW_DOMAIN in .env}"
: "${CW_ACME_EMAIL:?set CW_ACME_EMAIL in .env (Let's Encrypt writes there before a certificate expires)}"
live="/etc/letsencrypt/live/$CW_DOMAIN"
publish() {
    cp -L "$live/fullchain.pem" /etc/nginx/certs/.fullchain.pem.new \
        && cp -L "$live/privkey.pem" /etc/nginx/certs/.privkey.pem.new \
        && chmod 0600 /etc/nginx/certs/.privkey.pem.new \
        && mv /etc/nginx/certs/.privkey.pem.new /etc/nginx/certs/privkey.pem \
        && mv /etc/nginx/certs/.fullchain.pem.new /etc/nginx/certs/fullchain.pem
}
while :; do
    if [ -d "$live" ]; then
        certbot renew --webroot -w /var/www/acme --quiet && publish
    elif certbot certonly --webroot -w /var/www/acme -d "$CW_DOMAIN" --email "$CW_ACME_EMAIL" \
            --agree-tos --non-interactive --no-eff-email; then
        publish
    else
        echo "certbot: no certificate for $CW_DOMAIN yet (is port 80 reachable from the internet and the DNS name pointing here?); trying again in an hour" >&2
        sleep 3600
        continue
    fi
    sleep 43200
done
