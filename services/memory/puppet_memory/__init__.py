"""MemoryService: what each persona remembers."""
