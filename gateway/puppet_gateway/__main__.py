"""`python -m puppet_gateway`: render the config from PUPPET_GATEWAY_* and exec Envoy."""

from puppet_gateway.serve import main

main()
