"""SocialService: every write to and read from the network."""
