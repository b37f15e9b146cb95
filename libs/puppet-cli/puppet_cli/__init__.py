"""The `puppet` operator CLI: talks gRPC to the suite's services (see `puppet --help`)."""
