"""What crosses the wire between the queue manager and the programs that talk to it; both
sides import these, neither defines its own copy. Pure pydantic: importing it loads no web
framework and no Redis client (the worker agent imports it)."""
