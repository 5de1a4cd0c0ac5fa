"""The pure core: parsing, prompts, pricing, metrics, agreement, text and token rules. No clock, no I/O."""
