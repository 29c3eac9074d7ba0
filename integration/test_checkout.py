"""The checkout saga against the real payment simulator process: one test per
failure (decline, provider timeout, failure after capture, outage, hold expired
mid-saga, stale token, duplicate start), each with its end state asserted at
the platform, at the provider and in the event stream; the stream read live
and resumed; reconcile catching corruption; and kill -9 of the checkout
process during a run of checkouts."""
import concurrent.futures
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import uuid

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from conftest import Process, binary
from test_sale_core import refusal
import protos

inventory_pb2, inventory_grpc = protos.load("flashsale/v1/inventory.proto")
booking_pb2, booking_grpc = protos.load("flashsale/v1/booking.proto")
checkout_pb2, checkout_grpc = protos.load("flashsale/v1/checkout.proto")
payments_pb2, payments_grpc = protos.load("flashsale/v1/payments.proto")
money_pb2 = protos.load("flashsale/v1/money.proto")[0]
TOKEN = "checkout-token"
ADMIN = (("x-flashsale-service-token", TOKEN), ("x-flashsale-user-id", "admin-1"), ("x-flashsale-roles", "admin"))
State = checkout_pb2.CheckoutState
Event = checkout_pb2.TransactionEventType
PRICE = 129_900


def user(name):
    return (("x-flashsale-service-token", TOKEN), ("x-flashsale-user-id", name))


class Deployment:
    """The payment simulator and the platform (inventory, booking, checkout) as
    two processes on one SQLite store; the platform restartable."""

    def __init__(self, tmp_path, sim_latency_ms=0, store=None):
        self.store = store or tmp_path / "sales.db"
        self.store_flag = store or f"sqlite:{self.store}"
        self.payments_store = tmp_path / "payments.db"
        self.simulator = Process([binary("flashsale"), "serve", "--grpc-port", "0", "--role", "payments-sim",
                                  "--payments-store", str(self.payments_store), "--service-token", TOKEN,
                                  "--sim-timeout-delay", "4", "--sim-latency-ms", str(sim_latency_ms)])
        self.sim_channel = grpc.insecure_channel(f"127.0.0.1:{self.simulator.port}")
        self.payments = payments_grpc.PaymentsStub(self.sim_channel)
        self.platform = None
        self.start()

    def platform_args(self):
        return [binary("flashsale"), "serve", "--grpc-port", "0", "--store", self.store_flag,
                "--role", "inventory", "--role", "booking", "--role", "checkout",
                "--payments-address", f"127.0.0.1:{self.simulator.port}",
                "--payments-timeout", "0.8", "--payments-attempts", "2", "--service-token", TOKEN]

    def start(self):
        self.platform = Process(self.platform_args())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.platform.port}")
        self.inventory = inventory_grpc.InventoryStub(self.channel)
        self.booking = booking_grpc.BookingStub(self.channel)
        self.checkout = checkout_grpc.CheckoutStub(self.channel)

    def stop_platform(self, sig=signal.SIGTERM):
        self.channel.close()
        return self.platform.stop(sig)

    def close(self):
        self.stop_platform()
        self.sim_channel.close()
        self.simulator.stop()

    def create_sale(self, quantity=10, hold_seconds=300):
        now = time.time()
        return self.inventory.CreateSale(inventory_pb2.CreateSaleRequest(
            item_id="phone-1", item_name="Phone", price=money_pb2.Money(currency="EUR", amount_minor=PRICE),
            quantity=quantity, starts_at=timestamp_pb2.Timestamp(seconds=int(now - 1)),
            ends_at=timestamp_pb2.Timestamp(seconds=int(now + 3600)),
            hold_duration=duration_pb2.Duration(seconds=hold_seconds)), metadata=ADMIN, timeout=10)

    def hold(self, sale, who):
        return self.booking.Book(booking_pb2.BookRequest(sale_id=sale.sale_id, idempotency_key=str(uuid.uuid4())),
                                 metadata=user(who), timeout=10).booking

    def start_checkout(self, booking, card, key=None, token=None, timeout=30):
        return self.checkout.StartCheckout(checkout_pb2.StartCheckoutRequest(
            booking_id=booking.booking_id, fencing_token=booking.fencing_token if token is None else token,
            payment_method_token=card, idempotency_key=key or str(uuid.uuid4())),
            metadata=user(booking.user_id), timeout=timeout)

    def finished(self, record, timeout=20):
        """Polls GetCheckout until the saga ended."""
        deadline = time.monotonic() + timeout
        while record.state not in (State.CHECKOUT_STATE_COMPLETED, State.CHECKOUT_STATE_COMPENSATED):
            assert time.monotonic() < deadline, f"checkout still {State.Name(record.state)}: {record}"
            time.sleep(0.2)
            record = self.checkout.GetCheckout(checkout_pb2.GetCheckoutRequest(checkout_id=record.checkout_id),
                                               metadata=user(record.user_id), timeout=5)
        return record

    def booking_of(self, record):
        return self.booking.GetBooking(booking_pb2.GetBookingRequest(booking_id=record.booking_id),
                                       metadata=user(record.user_id), timeout=5)

    def provider_payments(self, reference):
        with sqlite3.connect(self.payments_store) as db:
            return db.execute("SELECT id, status, captured_minor FROM payments WHERE reference = ?",
                              (reference,)).fetchall()

    def captures(self, payment_id):
        with sqlite3.connect(self.payments_store) as db:
            return db.execute("SELECT count(*) FROM operations WHERE payment_id = ? AND kind = 'capture'",
                              (payment_id,)).fetchone()[0]

    def events(self, from_offset=0, wait=1.0):
        """Every event from `from_offset` the stream sends within `wait` seconds."""
        stream = self.checkout.WatchTransactions(checkout_pb2.WatchTransactionsRequest(from_offset=from_offset),
                                                 metadata=ADMIN, timeout=wait)
        events = []
        try:
            for event in stream:
                events.append(event)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
        return events

    def events_of(self, record):
        return [Event.Name(e.type) for e in self.events() if e.checkout_id == record.checkout_id]

    def available(self, sale, expected):
        """Whether the count reaches `expected` within its stated staleness (polled for a second)."""
        deadline = time.monotonic() + 1
        while True:
            count = self.inventory.GetAvailability(inventory_pb2.GetAvailabilityRequest(sale_id=sale.sale_id),
                                                   timeout=5).available
            if count == expected or time.monotonic() > deadline:
                return count == expected
            time.sleep(0.05)

    def reconcile(self, sale):
        return subprocess.run([binary("flashsale"), "reconcile", "--store", self.store_flag,
                               "--payments-store", str(self.payments_store), "--sale", sale.sale_id],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture()
def deployment(tmp_path):
    d = Deployment(tmp_path)
    yield d
    d.close()


def test_approved_checkout_completes(deployment):
    sale = deployment.create_sale()
    booking = deployment.hold(sale, "alice")
    record = deployment.start_checkout(booking, "tok_approve")
    assert record.state == State.CHECKOUT_STATE_COMPLETED, record
    assert [s.name for s in record.steps] == ["verify_hold", "authorize_payment", "create_order", "confirm_booking",
                                              "capture_payment", "complete_order"]
    assert record.amount.amount_minor == PRICE and record.order_id and record.payment_id
    assert deployment.booking_of(record).status == booking_pb2.BOOKING_STATUS_BOOKED
    assert deployment.provider_payments(record.checkout_id) == [(record.payment_id, "captured", PRICE)]
    assert deployment.events_of(record) == ["TRANSACTION_EVENT_TYPE_PAYMENT_AUTHORIZED",
                                            "TRANSACTION_EVENT_TYPE_ORDER_CREATED",
                                            "TRANSACTION_EVENT_TYPE_BOOKING_CONFIRMED",
                                            "TRANSACTION_EVENT_TYPE_PAYMENT_CAPTURED"]
    orders = deployment.checkout.ListOrders(checkout_pb2.ListOrdersRequest(), metadata=user("alice"), timeout=5)
    assert [(o.order_id, o.status) for o in orders.orders] == [(record.order_id, checkout_pb2.ORDER_STATUS_COMPLETED)]
    by_sale = deployment.checkout.ListOrders(checkout_pb2.ListOrdersRequest(sale_id=sale.sale_id), metadata=ADMIN,
                                             timeout=5)
    assert [o.order_id for o in by_sale.orders] == [record.order_id]
    # Another user's orders, or a sale's, need the admin role.
    code, reason, _ = refusal(lambda: deployment.checkout.ListOrders(
        checkout_pb2.ListOrdersRequest(sale_id=sale.sale_id), metadata=user("alice"), timeout=5))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # Another user cannot see the checkout.
    code, reason, _ = refusal(lambda: deployment.checkout.GetCheckout(
        checkout_pb2.GetCheckoutRequest(checkout_id=record.checkout_id), metadata=user("mallory"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CHECKOUT_NOT_FOUND")
    assert deployment.reconcile(sale).returncode == 0


def test_declined_payment_releases_the_unit_at_once(deployment):
    sale = deployment.create_sale(quantity=1)
    booking = deployment.hold(sale, "bob")
    assert deployment.available(sale, 0)
    record = deployment.start_checkout(booking, "tok_decline")
    assert record.state == State.CHECKOUT_STATE_COMPENSATED and record.failure_reason == "PAYMENT_DECLINED", record
    assert not record.order_id
    assert deployment.booking_of(record).status == booking_pb2.BOOKING_STATUS_RELEASED
    assert [(p[1]) for p in deployment.provider_payments(record.checkout_id)] == ["declined"]
    assert deployment.events_of(record) == ["TRANSACTION_EVENT_TYPE_HOLD_RELEASED"]
    # Another buyer can take the unit straight away.
    assert deployment.hold(sale, "carol").status == booking_pb2.BOOKING_STATUS_HOLD
    assert deployment.reconcile(sale).returncode == 0


def test_provider_timeout_is_resolved_by_asking_the_provider(deployment):
    # tok_timeout: the provider authorizes but answers after 4 s; each attempt
    # waits 0.8 s. The saga asks GetPayment, finds the authorization, goes on.
    sale = deployment.create_sale()
    booking = deployment.hold(sale, "dave")
    record = deployment.finished(deployment.start_checkout(booking, "tok_timeout"))
    assert record.state == State.CHECKOUT_STATE_COMPLETED, record
    payments = deployment.provider_payments(record.checkout_id)
    assert payments == [(record.payment_id, "captured", PRICE)], "one authorization despite the retries"
    assert deployment.events_of(record).count("TRANSACTION_EVENT_TYPE_PAYMENT_AUTHORIZED") == 1
    assert deployment.reconcile(sale).returncode == 0


def test_provider_error_after_capture_captures_once(deployment):
    sale = deployment.create_sale()
    booking = deployment.hold(sale, "erin")
    record = deployment.finished(deployment.start_checkout(booking, "tok_fail_after_capture"))
    assert record.state == State.CHECKOUT_STATE_COMPLETED, record
    assert deployment.provider_payments(record.checkout_id) == [(record.payment_id, "captured", PRICE)]
    assert deployment.captures(record.payment_id) == 1
    assert deployment.events_of(record).count("TRANSACTION_EVENT_TYPE_PAYMENT_CAPTURED") == 1
    assert deployment.booking_of(record).status == booking_pb2.BOOKING_STATUS_BOOKED
    assert deployment.reconcile(sale).returncode == 0


def test_provider_outage_compensates_after_bounded_attempts(deployment):
    sale = deployment.create_sale(quantity=1)
    booking = deployment.hold(sale, "frank")
    record = deployment.finished(deployment.start_checkout(booking, "tok_unavailable"))
    assert record.state == State.CHECKOUT_STATE_COMPENSATED and record.failure_reason == "PAYMENT_UNAVAILABLE", record
    attempts = [s for s in record.steps if s.name == "authorize_payment"]
    assert len(attempts) == 3 and all(s.status == checkout_pb2.STEP_STATUS_FAILED for s in attempts), record
    assert deployment.provider_payments(record.checkout_id) == []
    assert deployment.available(sale, 1)
    assert deployment.reconcile(sale).returncode == 0


def test_hold_expired_mid_saga_voids_the_payment(deployment):
    # A 1 s hold, and an Authorize that takes 1.6 s (two timed-out attempts):
    # the confirm meets an expired hold; the authorization is voided.
    sale = deployment.create_sale(quantity=1, hold_seconds=1)
    booking = deployment.hold(sale, "grace")
    record = deployment.finished(deployment.start_checkout(booking, "tok_timeout"))
    assert record.state == State.CHECKOUT_STATE_COMPENSATED and record.failure_reason == "HOLD_EXPIRED", record
    assert deployment.provider_payments(record.checkout_id) == [(record.payment_id, "voided", 0)]
    events = deployment.events_of(record)
    assert "TRANSACTION_EVENT_TYPE_PAYMENT_CAPTURED" not in events
    assert events.count("TRANSACTION_EVENT_TYPE_PAYMENT_VOIDED") == 1
    assert events.count("TRANSACTION_EVENT_TYPE_ORDER_CANCELLED") == 1
    order = deployment.checkout.ListOrders(checkout_pb2.ListOrdersRequest(), metadata=user("grace"), timeout=5)
    assert [o.status for o in order.orders] == [checkout_pb2.ORDER_STATUS_CANCELLED]
    assert deployment.booking_of(record).status == booking_pb2.BOOKING_STATUS_EXPIRED
    assert deployment.available(sale, 1)
    assert deployment.reconcile(sale).returncode == 0


def test_stale_token_and_finished_holds_are_refused_before_any_payment(deployment):
    sale = deployment.create_sale()
    booking = deployment.hold(sale, "heidi")
    code, reason, _ = refusal(lambda: deployment.start_checkout(booking, "tok_approve",
                                                                token=booking.fencing_token + 1))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "STALE_FENCING_TOKEN")
    deployment.booking.Cancel(booking_pb2.CancelRequest(booking_id=booking.booking_id,
                                                        fencing_token=booking.fencing_token),
                              metadata=user("heidi"), timeout=5)
    code, reason, _ = refusal(lambda: deployment.start_checkout(booking, "tok_approve"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "BOOKING_RELEASED")
    code, reason, _ = refusal(lambda: deployment.checkout.StartCheckout(checkout_pb2.StartCheckoutRequest(
        booking_id=booking.booking_id, fencing_token=booking.fencing_token, payment_method_token="tok_approve",
        idempotency_key="k"), metadata=user("someone-else"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "BOOKING_NOT_FOUND")
    with sqlite3.connect(deployment.payments_store) as db:
        assert db.execute("SELECT count(*) FROM payments").fetchone()[0] == 0


def test_duplicate_start_with_the_same_key_is_one_checkout(deployment):
    sale = deployment.create_sale()
    booking = deployment.hold(sale, "ivan")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        records = list(pool.map(lambda _: deployment.start_checkout(booking, "tok_approve", key="same-key"), range(8)))
    assert len({r.checkout_id for r in records}) == 1
    record = deployment.finished(records[0])
    assert record.state == State.CHECKOUT_STATE_COMPLETED
    assert len(deployment.provider_payments(record.checkout_id)) == 1
    assert deployment.captures(record.payment_id) == 1
    assert sorted(deployment.events_of(record)) == sorted(["TRANSACTION_EVENT_TYPE_PAYMENT_AUTHORIZED",
                                                           "TRANSACTION_EVENT_TYPE_ORDER_CREATED",
                                                           "TRANSACTION_EVENT_TYPE_BOOKING_CONFIRMED",
                                                           "TRANSACTION_EVENT_TYPE_PAYMENT_CAPTURED"])
    # The same booking with another key, or the same key for another booking.
    code, reason, _ = refusal(lambda: deployment.start_checkout(booking, "tok_approve", key="other-key"))
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "CHECKOUT_EXISTS")
    other = deployment.hold(sale, "ivan-2")
    code, reason, details = refusal(lambda: deployment.checkout.StartCheckout(checkout_pb2.StartCheckoutRequest(
        booking_id=other.booking_id, fencing_token=other.fencing_token, payment_method_token="tok_approve",
        idempotency_key="same-key"), metadata=user("ivan"), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND  # ivan does not own ivan-2's booking
    assert deployment.reconcile(sale).returncode == 0


def test_bad_requests_name_the_field(deployment):
    sale = deployment.create_sale()
    booking = deployment.hold(sale, "judy")
    for request, field in [
        (dict(fencing_token=booking.fencing_token, payment_method_token="tok_approve", idempotency_key="k"),
         "booking_id"),
        (dict(booking_id=booking.booking_id, payment_method_token="tok_approve", idempotency_key="k"),
         "fencing_token"),
        (dict(booking_id=booking.booking_id, fencing_token=booking.fencing_token, idempotency_key="k"),
         "payment_method_token"),
        (dict(booking_id=booking.booking_id, fencing_token=booking.fencing_token, payment_method_token="tok_approve"),
         "idempotency_key"),
        (dict(booking_id=booking.booking_id, fencing_token=booking.fencing_token, payment_method_token="tok_approve",
              idempotency_key="k" * 200), "idempotency_key"),
    ]:
        code, reason, details = refusal(lambda: deployment.checkout.StartCheckout(
            checkout_pb2.StartCheckoutRequest(**request), metadata=user("judy"), timeout=5))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"), field
        assert details["BadRequest"].field_violations[0].field == field
    code, _, _ = refusal(lambda: deployment.checkout.StartCheckout(checkout_pb2.StartCheckoutRequest(), timeout=5))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, reason, _ = refusal(lambda: deployment.checkout.ListOrders(
        checkout_pb2.ListOrdersRequest(page_token="not-a-token"), metadata=user("judy"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    code, _, _ = refusal(lambda: list(deployment.checkout.WatchTransactions(
        checkout_pb2.WatchTransactionsRequest(), metadata=user("judy"), timeout=5)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # The simulator's own refusals.
    code, reason, _ = refusal(lambda: deployment.payments.Capture(
        payments_pb2.CaptureRequest(payment_id="pay_nope", idempotency_key="x"), metadata=user("s"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "PAYMENT_NOT_FOUND")
    code, reason, _ = refusal(lambda: deployment.payments.Authorize(
        payments_pb2.AuthorizeRequest(idempotency_key="x", payment_method_token="tok_approve"),
        metadata=user("s"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_transaction_stream_is_ordered_gapless_resumable_and_live(deployment):
    sale = deployment.create_sale(quantity=20)
    for i in range(5):
        deployment.start_checkout(deployment.hold(sale, f"u{i}"), "tok_approve" if i % 2 == 0 else "tok_decline")
    everything = deployment.events()
    assert [e.offset for e in everything] == list(range(1, len(everything) + 1))
    assert len(everything) == 3 * 4 + 2 * 1
    assert len({e.event_id for e in everything}) == len(everything)
    # Resuming from any offset gives exactly the rest.
    for start in (1, 5, len(everything), len(everything) + 1):
        assert [e.event_id for e in deployment.events(start)] == [e.event_id for e in everything[start - 1:]]
    # Live: a reader waiting at the end sees a new checkout's events as they commit.
    received = []
    stream = deployment.checkout.WatchTransactions(
        checkout_pb2.WatchTransactionsRequest(from_offset=len(everything) + 1), metadata=ADMIN, timeout=10)

    def read():
        for event in stream:
            received.append(event)
            if len(received) == 4:
                stream.cancel()
                return

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    record = deployment.start_checkout(deployment.hold(sale, "live"), "tok_approve")
    reader.join(10)
    assert [e.offset for e in received] == list(range(len(everything) + 1, len(everything) + 5))
    assert {e.checkout_id for e in received} == {record.checkout_id}


def test_reconcile_names_a_second_capture_and_an_order_without_payment(deployment):
    sale = deployment.create_sale()
    paid = deployment.start_checkout(deployment.hold(sale, "kim"), "tok_approve")
    other = deployment.start_checkout(deployment.hold(sale, "lee"), "tok_approve")
    assert deployment.reconcile(sale).returncode == 0
    with sqlite3.connect(deployment.payments_store) as db:
        db.execute("INSERT INTO operations (idempotency_key, payment_id, kind, amount_minor, created_at) "
                   "VALUES ('forged', ?, 'capture', ?, 0)", (paid.payment_id, PRICE))
    with sqlite3.connect(deployment.store) as db:
        db.execute("UPDATE orders SET payment_id = NULL WHERE id = ?", (other.order_id,))
    out = deployment.reconcile(sale)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"payment {paid.payment_id} was captured 2 times" in out.stdout
    assert f"order {other.order_id} is completed but has no payment" in out.stdout
    missing = subprocess.run([binary("flashsale"), "reconcile", "--store", f"sqlite:{deployment.store}",
                              "--payments-store", str(deployment.payments_store), "--sale", "sale_nope"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2


def test_kill_9_during_checkouts_every_saga_ends_and_reconciles(tmp_path):
    seed = int(os.environ.get("CHECKOUT_CRASH_SEED", random.randrange(1 << 30)))
    count = int(os.environ.get("CHECKOUT_CRASH_COUNT", "500"))
    rng = random.Random(seed)
    print(f"seed {seed}, {count} checkouts")
    d = Deployment(tmp_path, sim_latency_ms=40)
    try:
        sale = d.create_sale(quantity=count)
        bookings = [d.hold(sale, f"buyer-{i}") for i in range(count)]
        cards = [rng.choice(["tok_approve"] * 6 + ["tok_decline", "tok_fail_after_capture", "tok_any"])
                 for _ in bookings]
        keys = [f"key-{i}" for i in range(count)]
        kills, interrupted = 0, []

        def run(indices):
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                futures = [pool.submit(d.start_checkout, bookings[i], cards[i], keys[i], None, 10) for i in indices]
                for f in futures:
                    try:
                        f.result()
                    except (grpc.RpcError, ValueError):
                        pass  # the process died under it (or its channel closed): retried after the restart

        rounds = int(os.environ.get("CHECKOUT_CRASH_ROUNDS", "4"))
        for round_ in range(rounds):
            runner = threading.Thread(target=run, args=(range(round_, count, rounds),))
            runner.start()
            time.sleep(rng.uniform(0.1, 0.6))
            # Then at the next moment some saga is in flight (read from the store), if one comes within 3 s.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    with sqlite3.connect(d.store, timeout=1) as db:
                        if db.execute("SELECT count(*) FROM checkouts WHERE state IN ('running', 'compensating')"
                                      ).fetchone()[0]:
                            break
                except sqlite3.OperationalError:
                    pass  # the tables are not created yet
                time.sleep(0.01)
            d.platform.stop(signal.SIGKILL)
            kills += 1
            # What the kill interrupted, read from the store while nothing runs.
            interrupted.append(d.reconcile(sale).stdout.count("unfinished: checkout"))
            d.channel.close()
            runner.join(60)
            d.start()
        # After the last restart every client retries with its key: the same checkout comes back.
        run(range(count))
        records = [d.checkout.StartCheckout(checkout_pb2.StartCheckoutRequest(
            booking_id=b.booking_id, fencing_token=b.fencing_token, payment_method_token=c, idempotency_key=k),
            metadata=user(b.user_id), timeout=30) for b, c, k in zip(bookings, cards, keys)]
        records = [d.finished(r, timeout=60) for r in records]
        completed = [r for r in records if r.state == State.CHECKOUT_STATE_COMPLETED]
        for r in completed:
            assert d.captures(r.payment_id) == 1
        out = d.reconcile(sale)
        print(out.stdout)
        assert out.returncode == 0, f"seed {seed}: {out.stdout}"
        declined = sum(1 for c in cards if c == "tok_decline")
        assert len(completed) == count - declined, f"seed {seed}"
        print(f"seed {seed}: {kills} kills, sagas in flight at each: {interrupted}, "
              f"{len(completed)} completed, {declined} compensated")
        assert sum(interrupted) > 0, f"seed {seed}: no kill hit a saga in flight"
    finally:
        d.close()
