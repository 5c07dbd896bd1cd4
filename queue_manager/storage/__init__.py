"""Participants' files on disk: outputs copied from workers, inputs they upload."""
