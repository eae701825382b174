"""Host controls as plain functions over a host connection, the policy and an evidence record.

Each ``check_*`` function gathers its evidence through a
:class:`~pytest_secagent.host.base.HostConnection`, records expectations on an
:class:`~pytest_secagent.evidence.Evidence`, and raises
:class:`~pytest_secagent.outcomes.EvidenceUnavailable` (or skips as not applicable) when it
cannot look; the caller ends with ``evidence.conclude()``.
"""
