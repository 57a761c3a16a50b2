"""The lean SMTP client against a real server (aiosmtpd), with and without PIPELINING:
refused recipients are results, the session stays usable after them (RSET), and the
lanes of `pacing.Limits` follow the registry's domains."""

from __future__ import annotations

import asyncio

import pytest

from haishin.outbound.client import Connection, Outgoing, stuff
from haishin.outbound.pacing import DEFAULT, Limits, TokenBucket
from haishin.registry.model import Delivery, DomainLimit
from support.smarthost import counting_sink
from support.statuscodes import Code

DATA = stuff(b"To: someone\r\nSubject: t\r\n\r\n.leading dot\r\nbody")


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_replies_are_results_and_the_session_goes_on(pipelining: bool) -> None:
    with counting_sink(pipelining) as sink:
        sink.answers = {"gone@example.jp": "550 5.1.1 no such user", "full@example.jp": "452 full"}

        async def main() -> list[int]:
            conn = await Connection.open("127.0.0.1", sink.port, timeout=10)
            assert conn.pipelining is pipelining
            codes = []
            for rcpt in ["a@example.jp", "gone@example.jp", "b@example.jp", "full@example.jp"]:
                reply = await conn.send("list-bounces@x.example", rcpt, DATA, eightbit=False)
                codes.append(reply.code)
            codes.append((await conn.send("l@x.example", "c@example.jp", DATA, eightbit=True)).code)
            assert conn.sent == 3
            await conn.quit()
            return codes

        codes = asyncio.run(main())
        sink.wait_deliveries(3)
        got = sink.snapshot()
    assert codes == [Code.OK, Code.MAILBOX_UNAVAILABLE, Code.OK, Code.INSUFFICIENT_STORAGE, Code.OK]
    assert [d.rcpt for d in got] == ["a@example.jp", "b@example.jp", "c@example.jp"]
    assert len({d.connection for d in got}) == 1  # one session for all of them


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_a_chain_of_messages_with_refusals_inside(pipelining: bool) -> None:
    """send_many: one message's content, dot and the next envelope share a write (RFC
    2920 §3.1); a refusal in the middle of the chain is that message's result only."""
    rcpts = ["a@example.jp", "gone@example.jp", "b@example.jp", "full@example.jp", "c@example.jp"]
    with counting_sink(pipelining) as sink:
        sink.answers = {"gone@example.jp": "550 5.1.1 no such user", "full@example.jp": "452 full"}

        async def main() -> list[int | None]:
            conn = await Connection.open("127.0.0.1", sink.port, timeout=10)
            chain = [Outgoing("l@x.example", r, DATA) for r in rcpts]
            replies = await conn.send_many(chain) + await conn.send_many(chain[:1])
            await conn.quit()
            return [r.code if r else None for r in replies]

        codes = asyncio.run(main())
        sink.wait_deliveries(4)
        got = sink.snapshot()
    assert codes == [
        Code.OK,
        Code.MAILBOX_UNAVAILABLE,
        Code.OK,
        Code.INSUFFICIENT_STORAGE,
        Code.OK,
        Code.OK,
    ]
    assert [d.rcpt for d in got] == ["a@example.jp", "b@example.jp", "c@example.jp", "a@example.jp"]


def test_dot_stuffing() -> None:
    assert stuff(b".a\r\n.b\r\nc") == b"..a\r\n..b\r\nc\r\n"
    assert stuff(b"x\r\n") == b"x\r\n"


def test_token_bucket_is_steady() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, clock=lambda: now[0])
    assert [bucket.delay() for _ in range(3)] == [0.0, 0.5, 1.0]  # queued in order
    now[0] = 10.0
    assert bucket.delay() == 0.0  # no burst saved beyond one token
    assert bucket.delay() == 0.5


def test_lanes_follow_the_registry_domains() -> None:
    limits = Limits(
        Delivery(connections=8, domains={"docomo.ne.jp": DomainLimit(messages_per_minute=60)})
    )
    assert limits.lane_of("a@docomo.ne.jp") == "docomo.ne.jp"
    assert limits.lane_of("a@DoCoMo.ne.jp") == "docomo.ne.jp"
    assert limits.lane_of("a@mail.docomo.ne.jp") == "docomo.ne.jp"
    assert limits.lane_of("a@notdocomo.ne.jp") == DEFAULT
    carrier = limits.limit("docomo.ne.jp")
    assert carrier.per_second == 1.0 and carrier.connections == 8
    assert limits.limit(DEFAULT).per_second is None


def test_a_session_that_ends_mid_chain_leaves_the_rest_unknown() -> None:
    """The replies of a pipelined group are awaited together (one future per write): a
    server that says 421 and hangs up after two messages gives those two their 250s, and
    the third (its group cut short) and the rest no outcome: retried, never counted as
    sent."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test\r\n")
        done = 0
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-test\r\n250 PIPELINING\r\n")
            elif verb == b"MAIL" and done == 2:
                writer.write(b"421 4.3.2 closing\r\n")
                await writer.drain()
                writer.close()
                return
            elif verb in (b"MAIL", b"RCPT"):
                writer.write(b"250 ok\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go\r\n")
                while await reader.readline() != b".\r\n":
                    pass
                done += 1
                writer.write(b"250 queued\r\n")
            await writer.drain()

    async def main() -> list[int | None]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = await Connection.open("127.0.0.1", port, timeout=10)
        chain = [Outgoing("l@x.example", f"r{i}@example.jp", DATA) for i in range(5)]
        replies = await conn.send_many(chain)
        usable = conn.usable
        server.close()
        return [r.code if r else None for r in replies] + [usable]

    got = asyncio.run(main())
    assert got == [Code.OK, Code.OK, None, None, None, False]


@pytest.mark.parametrize("pause", [0.3, 5.0], ids=["slow-replies", "silent"])
def test_each_reply_has_the_timeout_a_silent_smarthost_ends_the_session(pause: float) -> None:
    """The timeout is per awaited reply (one timer per connection, moved on as replies
    come): replies that each come within it pass however long the chain takes; a server
    that goes silent ends the session within it, the outcome unknown (None), no hang."""

    handlers: list[asyncio.Task[object]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        try:
            writer.write(b"220 test\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-test\r\n250 PIPELINING\r\n")
                elif verb in (b"MAIL", b"RCPT"):
                    writer.write(b"250 ok\r\n")
                elif verb == b"DATA":
                    await asyncio.sleep(pause)  # slow (or silent) before each 354
                    writer.write(b"354 go\r\n")
                    while await reader.readline() != b".\r\n":
                        pass
                    writer.write(b"250 queued\r\n")
                await writer.drain()
        finally:
            writer.close()

    async def main() -> tuple[list[int | None], bool, float]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = await Connection.open("127.0.0.1", port, timeout=1.0)
        chain = [Outgoing("l@x.example", f"r{i}@example.jp", DATA) for i in range(6)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        replies = await conn.send_many(chain)
        took = loop.time() - started
        server.close()
        for handler in handlers:  # the silent one still sleeps
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        return [r.code if r else None for r in replies], conn.usable, took

    codes, usable, took = asyncio.run(main())
    if pause < 1.0:
        assert codes == [Code.OK] * 6 and usable and took > 1.0  # 6 × 0.3 s, none late
    else:
        assert codes == [None] * 6 and not usable and 1.0 <= took < 2.5
