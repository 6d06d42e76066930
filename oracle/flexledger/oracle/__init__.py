"""The metering oracle: MQTT ingest of meter-signed readings, their verification and storage,
Merkle trees in the OpenZeppelin standard format, anchoring roots in MeterOracle, proofs, baselines."""
