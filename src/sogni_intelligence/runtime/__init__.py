"""The durable layer: workflows and chat runs, their records, events and execution."""
