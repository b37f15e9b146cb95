"""ChainService: Solana wallets, transfers, swaps, policy and audit; the only key holder."""
