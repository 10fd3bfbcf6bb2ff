"""The Ray engine: shards of client sessions in Ray actors, locally or on a cluster.

Ray is optional (the ``ray`` extra) and imported only here, when a round asks for it. When
this module starts or joins Ray (``ray.init``), the actors run this process's copy of secfl,
shipped with the job's runtime environment (``py_modules``): a cluster's nodes need secfl's
dependencies, not secfl itself, and a seeded round gives the same bytes as on the other
engines. A Ray that the caller initialised keeps the caller's runtime environment: secfl
must then be importable on its workers (installed there, or ``py_modules`` of that job).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import secfl
from secfl.errors import EngineError, InvalidArgument, MissingDependency
from secfl.protocols.base import ClientId
from secfl.runtime.engines import ClientRecipe, Engine, Shard, ShardedPool, _answer

__all__ = ["RayPool"]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingDependency(
            "engine 'ray' needs Ray, which is not installed: pip install 'secfl[ray]' "
            "(or choose engine 'processes' to use this machine's cores)"
        ) from e
    return ray


class _ShardActor:
    """A :class:`Shard` behind a Ray actor (one method for both kinds of message)."""

    def __init__(self, recipe: ClientRecipe, round_id: int, client_ids: Sequence[ClientId]):
        self._shard = Shard(recipe, round_id, client_ids)

    def call(self, kind: str, payload: Any) -> Any:
        return _answer(self._shard, kind, payload)


class RayPool(ShardedPool):
    """Shards in Ray actors (one CPU each). Without ``address`` (and without
    ``RAY_ADDRESS`` in the environment) a local Ray instance is started for the round and
    shut down after it; a Ray already initialised in this process is used as it is."""

    engine = Engine.RAY

    def __init__(
        self,
        recipe: ClientRecipe,
        round_id: int,
        client_ids: Sequence[ClientId],
        *,
        workers: int | None,
        address: str | None,
        timeout: float | None,
    ) -> None:
        self._ray = _import_ray()
        self._started = False
        if not self._ray.is_initialized():
            local = address is None and not os.environ.get("RAY_ADDRESS")
            try:
                with warnings.catch_warnings():  # a tip about GPUs, which rounds do not use
                    warnings.filterwarnings("ignore", "Tip: In future versions of Ray")
                    self._ray.init(
                        address=address,
                        num_cpus=(workers or os.cpu_count() or 1) if local else None,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                        # Ship this process's secfl: the workers then run the same code.
                        runtime_env={"py_modules": [str(Path(secfl.__file__).parent)]},
                    )
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = "a local Ray instance" if local else f"the Ray cluster at {address!r}"
                raise EngineError(f"could not start or reach {where}: {e}") from e
            self._started = True
        cpus = int(self._ray.cluster_resources().get("CPU", 0))
        if workers is not None and workers > cpus:
            self._shutdown()
            raise InvalidArgument(
                f"workers={workers} but the Ray cluster has {cpus} CPUs (each worker takes one): "
                "ask for fewer workers, or leave workers unset to use them all"
            )
        super().__init__(
            recipe, round_id, client_ids, workers=workers or max(1, cpus), timeout=timeout
        )
        self._actors: list[Any] = []
        self._pending: list[deque[Any]] = [deque() for _ in range(self.workers)]

    def open(self) -> None:
        actor = self._ray.remote(num_cpus=1, max_restarts=0)(_ShardActor).options(
            scheduling_strategy="SPREAD"
        )
        for shard in self._shards:
            self._actors.append(actor.remote(self._recipe, self._round_id, shard))

    def _submit(self, worker: int, message: tuple[str, Any]) -> None:
        self._pending[worker].append(self._actors[worker].call.remote(*message))

    def _collect(self, worker: int) -> Any:
        ray = self._ray
        try:
            return ray.get(self._pending[worker].popleft(), timeout=self._timeout)
        except ray.exceptions.GetTimeoutError:
            raise EngineError(
                f"Ray worker {worker} sent no answer within {self._timeout:g} s"
            ) from None
        except ray.exceptions.RayActorError as e:
            raise EngineError(f"Ray worker {worker} died during the round: {e}") from None
        except ray.exceptions.RayError as e:
            raise EngineError(f"Ray worker {worker} failed: {e}") from None

    def _shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors.clear()
        self._shutdown()
