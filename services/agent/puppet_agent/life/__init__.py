"""A persona's life as pure pieces: schedule, events, mood, reactions (no gRPC, injected clocks)."""
