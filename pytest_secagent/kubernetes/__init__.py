"""Kubernetes: live clusters and rendered manifests."""
