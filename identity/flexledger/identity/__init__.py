"""Identity: keys, DIDs and DID documents, role credentials, EIP-712 typed data, sign-in messages."""
