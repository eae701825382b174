"""Kubernetes control logic: pure functions over a view, the policy and an Evidence record.

Each module holds the controls of one concern. A check function takes a
:class:`~pytest_secagent.kubernetes.view.KubernetesView`, the
:class:`~pytest_secagent.policy.model.Policy`, an
:class:`~pytest_secagent.evidence.Evidence` and optionally the agent namespace of the
target (the policy's ``agent.namespace`` otherwise); it records what it expected and
observed and leaves ``conclude()`` to the caller. The same code runs on a live cluster and
on rendered manifests.

Each finding fails exactly one control, the most specific one: a container-engine socket
mounted through ``hostPath`` fails SA-RUNTIME-004, not also SA-RUNTIME-009; the Pod
Security Standards listing of SA-RUNTIME-007 fails only on the rules SA-RUNTIME-007 owns
and lists the others as warnings that name the control failing on them.
"""
