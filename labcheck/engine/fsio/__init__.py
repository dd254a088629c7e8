"""File and stream plumbing: read-ahead, atomic writes, where big temporary files go."""
