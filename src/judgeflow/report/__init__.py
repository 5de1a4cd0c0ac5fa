"""The report of a run: its data (report.json) and its text (report.md), built from the agreement result."""
