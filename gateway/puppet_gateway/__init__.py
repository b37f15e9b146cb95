"""The Envoy gateway: config rendering, the canary controller and its CLI."""
