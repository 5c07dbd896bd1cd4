"""The use cases: `QueueService` is the one way into the queue for every route, socket and
command; it rules, logs one line and counts each change, and owns the background loops. The
read models the pages and the dashboard share (event hub, room feed, node catalogue) live here
too."""
