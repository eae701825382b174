"""Host targets: local, ssh and containers, and the container engine on them."""
