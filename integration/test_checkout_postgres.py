"""Checkout on PostgreSQL with two `flashsale serve` instances sharing one
database and one payment simulator: checkouts through both at once, one
instance killed mid-run (the other finishes its sagas), and a reader of the
transaction stream that disconnects and resumes at random offsets: every
event seen exactly once, in commit order, and reconcile passes.
Needs FLASHSALE_TEST_POSTGRES_URL (make test starts a throwaway cluster)."""
import concurrent.futures
import os
import random
import signal
import threading
import time

import grpc
import pytest

from conftest import Process
from test_checkout import ADMIN, Deployment, State, checkout_pb2, checkout_grpc, user
from test_postgres import fresh_database

BASE = os.environ.get("FLASHSALE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(BASE is None, reason="FLASHSALE_TEST_POSTGRES_URL is not set (make test sets it)")
SAGA_ORDER = [checkout_pb2.TRANSACTION_EVENT_TYPE_PAYMENT_AUTHORIZED, checkout_pb2.TRANSACTION_EVENT_TYPE_ORDER_CREATED,
              checkout_pb2.TRANSACTION_EVENT_TYPE_BOOKING_CONFIRMED, checkout_pb2.TRANSACTION_EVENT_TYPE_PAYMENT_CAPTURED]


def test_two_instances_one_killed_stream_exactly_once_in_order(tmp_path):
    seed = int(os.environ.get("CHECKOUT_PG_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"seed {seed}")
    d = Deployment(tmp_path, sim_latency_ms=20, store=fresh_database())
    second = Process(d.platform_args())
    second_channel = grpc.insecure_channel(f"127.0.0.1:{second.port}")
    try:
        count = 150
        sale = d.create_sale(quantity=count)
        bookings = [d.hold(sale, f"buyer-{i}") for i in range(count)]
        cards = [rng.choice(["tok_approve"] * 5 + ["tok_decline"]) for _ in bookings]
        stubs = [d.checkout, checkout_grpc.CheckoutStub(second_channel)]

        # The reader: follows the stream through the first instance, dropping
        # the connection at random and resuming from the offset after the last
        # event it kept (sometimes from an earlier one, which must replay the same events).
        seen, stop = [], threading.Event()

        def read():
            while not stop.is_set():
                start = len(seen) + 1
                if seen and rng.random() < 0.3:
                    start = rng.randrange(1, len(seen) + 1)
                stream = d.checkout.WatchTransactions(checkout_pb2.WatchTransactionsRequest(from_offset=start),
                                                      metadata=ADMIN, timeout=rng.uniform(0.2, 1.0))
                try:
                    for event in stream:
                        assert event.offset == start, f"seed {seed}: expected offset {start}, got {event.offset}"
                        if start <= len(seen):
                            assert seen[start - 1].event_id == event.event_id, f"seed {seed}: offset {start} changed"
                        else:
                            seen.append(event)
                        start += 1
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error

        reader = threading.Thread(target=read)
        reader.start()

        def start_checkout(i):
            stub = stubs[i % 2]
            b = bookings[i]
            try:
                return stub.StartCheckout(checkout_pb2.StartCheckoutRequest(
                    booking_id=b.booking_id, fencing_token=b.fencing_token, payment_method_token=cards[i],
                    idempotency_key=f"key-{i}"), metadata=user(b.user_id), timeout=10)
            except (grpc.RpcError, ValueError):
                return None  # the second instance was killed under it

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(start_checkout, i) for i in range(count)]
            time.sleep(rng.uniform(0.3, 1.0))
            second.stop(signal.SIGKILL)
            second_channel.close()
            concurrent.futures.wait(futures)
        # Clients of the dead instance retry on the live one with their key;
        # the live one also resumes the dead one's idle sagas by itself.
        records = []
        for i, b in enumerate(bookings):
            record = d.checkout.StartCheckout(checkout_pb2.StartCheckoutRequest(
                booking_id=b.booking_id, fencing_token=b.fencing_token, payment_method_token=cards[i],
                idempotency_key=f"key-{i}"), metadata=user(b.user_id), timeout=30)
            records.append(d.finished(record, timeout=60))
        declined = cards.count("tok_decline")
        assert sum(r.state == State.CHECKOUT_STATE_COMPLETED for r in records) == count - declined, f"seed {seed}"
        time.sleep(1.5)
        stop.set()
        reader.join(10)
        everything = d.events(wait=2.0)
        assert [e.offset for e in everything] == list(range(1, len(everything) + 1)), f"seed {seed}"
        assert [e.event_id for e in seen] == [e.event_id for e in everything], f"seed {seed}: reader missed or repeated"
        assert len({e.event_id for e in everything}) == len(everything)
        # Per checkout, the events come in the saga's order, each once.
        by_checkout = {}
        for e in everything:
            by_checkout.setdefault(e.checkout_id, []).append(e.type)
        for r in records:
            if r.state == State.CHECKOUT_STATE_COMPLETED:
                assert by_checkout[r.checkout_id] == SAGA_ORDER, f"seed {seed}: {r.checkout_id}"
            else:
                assert by_checkout[r.checkout_id] == [checkout_pb2.TRANSACTION_EVENT_TYPE_HOLD_RELEASED]
        out = d.reconcile(sale)
        assert out.returncode == 0, f"seed {seed}: {out.stdout}{out.stderr}"
        print(f"seed {seed}: {len(everything)} events read exactly once across reconnects; "
              f"{count - declined} completed, {declined} compensated; reconcile passed")
    finally:
        if second.alive():
            second.stop()
        d.close()
