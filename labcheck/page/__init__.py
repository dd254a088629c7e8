"""The course page: its shell commands and documented results (file:line), run in the lab sandbox, drift lint."""
