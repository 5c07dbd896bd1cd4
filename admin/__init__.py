"""The instructor's dashboard (`/admin`), mounted in the queue manager. Not built yet (issue 6)."""
