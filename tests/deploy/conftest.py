"""Fixtures of the deployment tests: the Kubernetes test API server of ``tests/kubernetes``."""

from __future__ import annotations

from tests.kubernetes.conftest import k8s_apiserver_factory

__all__ = ["k8s_apiserver_factory"]
