"""A standalone emulator to try the bot against: `python -m bot.dev.emulator [--rtt 100]`.

Prints the base URL and token to put in the configuration (`[telegram] base_url`) and the
environment (SEZIM_BOT_TOKEN); runs until interrupted. Nobody writes to it by itself: it
is for `sezim-bot check` and for looking at the bot's start-up against a slow network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.dev.emulator.server import BotAPIEmulator


async def serve(port: int, rtt_ms: float) -> None:
    emulator = BotAPIEmulator(rtt=rtt_ms / 1000)
    await emulator.start(port=port)
    print(f"base_url = \"{emulator.base_url}\"", flush=True)  # noqa: T201
    print(f"SEZIM_BOT_TOKEN={emulator.token}", flush=True)  # noqa: T201
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    parser.add_argument("--rtt", type=float, default=0.0,
                        help="milliseconds added to every Bot API call's round trip")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.rtt))


if __name__ == "__main__":
    main()
