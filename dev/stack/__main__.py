"""`python3 tasks.py run`: the whole system on local defaults, stopped by Ctrl-C.

See dev/stack/stack.py for what starts and which variables it honours.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from dev.stack.stack import ROOT, StackConfig, start_stack
from dev.stack.supervisor import Supervisor
from vult.process.settings import LOCAL_OPS_API_TOKEN

DATA = ROOT / ".data"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def main() -> int:
    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    config = StackConfig(
        data_dir=DATA,
        api_port=_port("API_PORT", 8000),
        temporal_port=_port("TEMPORAL_PORT", 7233),
        ui_port=_port("TEMPORAL_UI_PORT", 8233),
        stripe_port=_port("STRIPE_EMULATOR_PORT", 8420),
        metrics_port=_port("WORKER_METRICS_PORT", 9464),
        inbox_port=_port("INBOX_PORT", 8025),
        smtp_port=_port("INBOX_SMTP_PORT", 1025),
    )
    stack = None
    try:
        stack = start_stack(config)
        print()
        print(f"  API            {stack.api_url}/api/orders")
        print(f"  API docs       {stack.api_url}/docs")
        if stack.temporal_ui:
            print(
                f"  Temporal UI    {stack.temporal_ui}  (payloads decoded through the API's codec)"
            )
        if stack.inbox_url:
            print(f"  Mail and webhooks  {stack.inbox_url}")
        print(f"  Worker metrics http://{stack.env.get('WORKER_METRICS_ADDRESS')}/metrics")
        print(f"  API metrics    http://{stack.env.get('API_METRICS_ADDRESS')}/metrics")
        print(f"  Logs           {(DATA / 'logs').relative_to(ROOT)}/")
        if not os.environ.get("OPS_API_TOKEN"):
            print(f"  Ops token      {LOCAL_OPS_API_TOKEN}  (development only)")
        print("\nVult Orders is running. Press Ctrl-C to stop.", flush=True)
        supervisor = Supervisor(stack.children, stack.supervised, say=_log)
        while True:
            supervisor.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        # A second Ctrl-C (or SIGTERM) must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
