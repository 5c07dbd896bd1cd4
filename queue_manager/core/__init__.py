"""The pure core: the domain's types and rules (jobs and their lifecycle, lanes and the fair
scheduling policy, requirements, events, accounts, workers, path rules), with no I/O: no Redis,
no HTTP, no clock reads. Every other layer imports it; it imports none of them."""
