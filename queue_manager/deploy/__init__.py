"""What a deployment needs beyond the service itself: the checks and files of docker compose,
nginx sites, systemd units."""
