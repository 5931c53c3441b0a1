"""Worker Versioning: which build of the worker runs which order (docs/operations.md).

Every worker polls as one version (deployment name + build id) of the Worker Deployment.
Temporal sends a workflow's tasks to the deployment's *current* build (or, for a share of
them, its *ramping* one); what happens to a running workflow when the current build
changes is its type's versioning behaviour:

- OrderWorkflow is AUTO_UPGRADE, the deployment's default below: an order lives for weeks
  (parked ones until ops act), so it moves to each new current build; every
  command-changing edit is therefore guarded by `workflow.patched` and proven by the replay
  corpus (tests/replay/).
- LatePaymentWorkflow is PINNED, declared on its class: it lives minutes (a refund, a
  cancel), so it finishes on the build it started on, and an edit to it needs no patch.

The functions here are what a worker does at start (`WORKER_PROMOTE`) and what the tests
and the deploy procedure do; operators use the same calls through the Temporal CLI.

`WORKER_PROMOTE=unless-superseded` is for a worker that is started again (the local stack's
supervisor restarts its worker with it): the build becomes current only when no build is,
when it already is, or when the current one is older and this build was never replaced.
"Older" is the server's word, not the build ids': each build's create time, when its
workers first polled. So a restarted old build never takes the deployment back from a newer
one an operator made current, nor undoes a rollback or a ramp (`why_not_current`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.deployment.v1 import WorkerDeploymentInfo
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentResponse,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

_log = logging.getLogger("vult.deployments")
# A worker's version exists at the server only once it has polled: ask this long for it.
_APPEAR_ATTEMPTS = 60
_APPEAR_PAUSE_S = 0.5
_IDENTITY = "vult-orders"
_RETRYABLE = (
    RPCStatusCode.NOT_FOUND,
    RPCStatusCode.FAILED_PRECONDITION,
    RPCStatusCode.UNAVAILABLE,
    # Two workers promoting the same build at once: one wins, the other retries.
    RPCStatusCode.ABORTED,
)


# The behaviour of a workflow type that declares none: OrderWorkflow's (see above). A
# type declared on its class (LatePaymentWorkflow: PINNED) keeps its own. The order's is
# given here rather than on its class because a behaviour declared on a class is refused
# by unversioned workers, which the workflow tests run it on.
DEFAULT_BEHAVIOUR = VersioningBehavior.AUTO_UPGRADE


def deployment_config(deployment: str, build_id: str) -> WorkerDeploymentConfig:
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=deployment, build_id=build_id),
        use_worker_versioning=True,
        default_versioning_behavior=DEFAULT_BEHAVIOUR,
    )


@dataclass(frozen=True)
class Routing:
    current: str | None  # build id; None: unversioned workers get the tasks
    ramping: str | None
    ramping_percentage: float


async def _describe(client: Client, deployment: str) -> DescribeWorkerDeploymentResponse | None:
    try:
        return await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def routing(client: Client, deployment: str) -> Routing | None:
    """The deployment's current and ramping builds; None when the deployment does not exist."""
    answer = await _describe(client, deployment)
    if answer is None:
        return None
    config = answer.worker_deployment_info.routing_config
    current = config.current_deployment_version.build_id or None
    ramping = config.ramping_deployment_version.build_id or None
    return Routing(current, ramping, config.ramping_version_percentage if ramping else 0.0)


async def _until_known(call: str, attempt: Callable[[], Awaitable[object]]) -> None:
    """Run `attempt` (an RPC) until the version it names has been seen polling (bounded)."""
    for n in range(_APPEAR_ATTEMPTS):
        try:
            await attempt()
            return
        except RPCError as err:
            if err.status not in _RETRYABLE or n == _APPEAR_ATTEMPTS - 1:
                raise
            _log.debug("%s: %s; trying again", call, err.message)
        await asyncio.sleep(_APPEAR_PAUSE_S)


async def set_current(client: Client, deployment: str, build_id: str) -> None:
    """Make `build_id` current: new workflows and every AUTO_UPGRADE one run on it."""
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=deployment,
        build_id=build_id,
        identity=_IDENTITY,
    )
    await _until_known(
        f"set {build_id} current",
        lambda: client.workflow_service.set_worker_deployment_current_version(request),
    )


async def set_ramping(client: Client, deployment: str, build_id: str, percentage: float) -> None:
    """Send `percentage` % of new (and AUTO_UPGRADE) workflow tasks to `build_id`."""
    request = SetWorkerDeploymentRampingVersionRequest(
        namespace=client.namespace,
        deployment_name=deployment,
        build_id=build_id,
        percentage=percentage,
        identity=_IDENTITY,
    )
    await _until_known(
        f"ramp {build_id}",
        lambda: client.workflow_service.set_worker_deployment_ramping_version(request),
    )


@dataclass(frozen=True)
class Build:
    """What the server says of one build of the deployment."""

    build_id: str
    created: datetime | None  # when its workers first polled; None: the server does not say
    has_been_current: bool = False
    ramping: bool = False


def why_not_current(this: Build, current: Build | None) -> str | None:
    """Why `WORKER_PROMOTE=unless-superseded` leaves `current` current rather than make
    `this` build current; None when it may. Which build is newer is decided by the server's
    create times, never by comparing build ids."""
    if current is None or current.build_id == this.build_id:
        return None
    if this.created is None or current.created is None:
        return "the server gives no create time to tell which build is newer"
    if current.created >= this.created:
        return (
            f"it is newer (first polled {current.created.isoformat()}, this build "
            f"{this.created.isoformat()})"
        )
    if this.has_been_current:
        return "this build was current before and was replaced (a rollback or a promotion)"
    if this.ramping:
        return "this build is being ramped; it becomes current when an operator promotes it"
    return None


def _builds(info: WorkerDeploymentInfo) -> dict[str, Build]:
    ramping = info.routing_config.ramping_deployment_version.build_id
    return {
        v.deployment_version.build_id: Build(
            v.deployment_version.build_id,
            v.create_time.ToDatetime(UTC) if v.HasField("create_time") else None,
            has_been_current=v.HasField("last_current_time"),
            ramping=v.deployment_version.build_id == ramping,
        )
        for v in info.version_summaries
    }


async def _promote_unless_superseded(client: Client, deployment: str, build_id: str) -> bool:
    """Make `build_id` current unless `why_not_current` says otherwise. The decision and the
    change are one step: the change carries the describe's conflict token, so a promotion
    made in between fails it, and the decision is taken again."""
    for _ in range(_APPEAR_ATTEMPTS):
        answer = await _describe(client, deployment)
        builds = _builds(answer.worker_deployment_info) if answer is not None else {}
        this = builds.get(build_id)
        if answer is not None and this is not None:
            config = answer.worker_deployment_info.routing_config
            current_id = config.current_deployment_version.build_id
            current = builds.get(current_id, Build(current_id, None)) if current_id else None
            reason = why_not_current(this, current)
            if reason is not None and current is not None:
                _log.warning(
                    "build %s is polling; %s stays current: %s (WORKER_PROMOTE=unless-superseded"
                    ", docs/operations.md, 'Deploying new code')",
                    build_id,
                    current.build_id,
                    reason,
                )
                return False
            request = SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace,
                deployment_name=deployment,
                build_id=build_id,
                conflict_token=answer.conflict_token,
                identity=_IDENTITY,
            )
            try:
                await client.workflow_service.set_worker_deployment_current_version(request)
            except RPCError as err:
                if err.status not in _RETRYABLE:
                    raise
                _log.debug("set %s current: %s; deciding again", build_id, err.message)
            else:
                _log.info("build %s is now current in deployment %s", build_id, deployment)
                return True
        await asyncio.sleep(_APPEAR_PAUSE_S)
    raise RuntimeError(f"build {build_id} of deployment {deployment} could not be made current")


async def promote_on_start(client: Client, deployment: str, build_id: str, when: str) -> bool:
    """What `WORKER_PROMOTE` asks of a worker that has just started polling; True when it
    made its build current."""
    if when == "never":
        return False
    if when == "unless-superseded":
        return await _promote_unless_superseded(client, deployment, build_id)
    if when == "first":
        now = await routing(client, deployment)
        if now is not None and now.current is not None:
            if now.current != build_id:
                _log.warning(
                    "build %s is polling; %s stays current until an operator promotes this "
                    "one (docs/operations.md, 'Deploying new code')",
                    build_id,
                    now.current,
                )
            return False
    await set_current(client, deployment, build_id)
    _log.info("build %s is now current in deployment %s", build_id, deployment)
    return True
