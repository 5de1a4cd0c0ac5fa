"""The run folder: the store and its thread, JSONL files and records, the event log, watch, the run context."""
