"""Network endpoints: TLS probes and reachability."""
