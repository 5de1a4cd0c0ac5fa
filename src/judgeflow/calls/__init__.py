"""The call policy, written once for every model call: cache, budget, gate (limits, retries), timing, LLM roles."""
