"""Runs localstripe (the Stripe emulator) with its state kept where we say.

Stock localstripe pickles its whole store to /tmp/localstripe.pickle after every object it
creates: one file shared by every instance on the machine, rewritten many times per
request, which makes each request slower than the last. Here the store is saved to
--state-file once per write request (the emulator's own middleware does that), or not at all
without --state-file.

Stock localstripe also lists objects of a kind (a charge's refunds, each time it renders a
charge) by scanning its whole store, so it slows as a run grows; here the store keeps its
keys by kind as well, and listing reads that. It also honours Idempotency-Key as Stripe does
(dev/stack/stripe_idempotency.py), and has Stripe's refund and dispute events, disputes, and
card 4000 0000 0000 0259 (dev/stack/stripe_money.py). Everything else is localstripe as
published.

    python -m dev.stack.localstripe_server --port 8420 [--state-file .data/localstripe.pickle]
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

from dev.stack.stripe_idempotency import STRIPE_LIFETIME
from vult.process.event_loop import use_fast_loop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument(
        "--idempotency-key-seconds", type=float, default=STRIPE_LIFETIME, help="Stripe's: 24 h"
    )
    args = parser.parse_args()

    from localstripe import resources

    store_class = resources.Store
    state: Path | None = args.state_file

    # kind ("refund", "charge", ...) -> {key: object}, in the store's own order
    kinds: dict[str, dict[str, object]] = {}

    def put(store: dict, key: str, value: object) -> None:  # type: ignore[type-arg]
        dict.__setitem__(store, key, value)
        kinds.setdefault(key.partition(":")[0], {})[key] = value

    def remove(store: dict, key: str) -> None:  # type: ignore[type-arg]
        dict.__delitem__(store, key)
        kinds.get(key.partition(":")[0], {}).pop(key, None)

    def clear(store: dict) -> None:  # type: ignore[type-arg]
        dict.clear(store)
        kinds.clear()

    def list_all(
        cls: type[Any],
        /,
        url: str,
        limit: object = None,
        starting_after: object = None,
        **kwargs: Any,
    ) -> Any:
        if kwargs:
            raise resources.UserError(400, "Unexpected " + ", ".join(kwargs))
        listed = resources.List(url, limit=limit, starting_after=starting_after)
        listed._list = list(kinds.get(cls.object, {}).values())
        return listed

    def load(store: dict) -> None:  # type: ignore[type-arg]
        if state is not None and state.exists():
            with state.open("rb") as f:
                for key, value in pickle.load(f).items():
                    put(store, key, value)

    def dump(store: dict) -> None:  # type: ignore[type-arg]
        if state is not None:
            tmp = state.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(state)

    store_class.try_load_from_disk = load
    store_class.dump_to_disk = dump
    store_class.__setitem__ = put
    store_class.__delitem__ = remove
    store_class.clear = clear
    resources.StripeObject._api_list_all = classmethod(list_all)

    from localstripe import errors, server

    from dev.stack import (
        stripe_capture,
        stripe_cards,
        stripe_endpoints,
        stripe_idempotency,
        stripe_js,
        stripe_money,
        stripe_params,
    )

    stripe_money.install(server.app, resources, errors)
    stripe_capture.install(server.app, resources, errors)
    stripe_js.install(server.app, resources, errors)
    stripe_params.install(server.app, resources, errors)
    stripe_endpoints.install(server.app, resources)
    stripe_cards.install(server.app, resources, errors)
    stripe_idempotency.install(server.app, resources.store, args.idempotency_key_seconds)
    use_fast_loop()  # aiohttp's run_app takes its loop from the policy

    # localstripe's own entry point reads --port and --from-scratch; loading is ours.
    sys.argv = [sys.argv[0], "--port", str(args.port), "--from-scratch"]
    load(resources.store)
    server.start()


if __name__ == "__main__":
    main()
