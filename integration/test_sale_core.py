"""The sale core through the real server and a real client (grpcio): sales,
holds, confirm and cancel, hold expiry, live counts, idempotency across a
restart, a burst of concurrent Book calls, and the audit command."""
import concurrent.futures
import random
import re
import sqlite3
import subprocess
import threading
import time
import urllib.request
import uuid

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from conftest import Process, binary
import protos

inventory_pb2, inventory_grpc = protos.load("flashsale/v1/inventory.proto")
booking_pb2, booking_grpc = protos.load("flashsale/v1/booking.proto")
money_pb2 = protos.load("flashsale/v1/money.proto")[0]
TOKEN = "sale-core-token"
ADMIN = (("x-flashsale-service-token", TOKEN), ("x-flashsale-user-id", "admin-1"), ("x-flashsale-roles", "admin"))


def user(name):
    return (("x-flashsale-service-token", TOKEN), ("x-flashsale-user-id", name))


class Platform:
    """`flashsale serve` on a store (an SQLite file, or a postgres:// URL),
    restartable on the same store."""

    def __init__(self, store):
        self.store = store
        self.store_flag = store if str(store).startswith("postgres") else f"sqlite:{store}"
        self.server = None
        self.start()

    def start(self):
        self.server = Process([binary("flashsale"), "serve", "--grpc-port", "0", "--metrics-port", "0",
                               "--store", self.store_flag, "--service-token", TOKEN])
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}")
        self.inventory = inventory_grpc.InventoryStub(self.channel)
        self.booking = booking_grpc.BookingStub(self.channel)

    def stop(self, sig=None):
        self.channel.close()
        if sig is None:
            return self.server.stop()
        return self.server.stop(sig)

    def metrics(self):
        match = re.search(r"address=[^\s]*:(\d+) \S+ metrics endpoint listening", self.server.stderr())
        assert match, self.server.stderr()
        return urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/metrics", timeout=5).read().decode()

    def create_sale(self, quantity=10, per_user_limit=None, hold_seconds=300, starts_in=-1, lasts=3600,
                    price=None, **extra):
        now = time.time()
        request = inventory_pb2.CreateSaleRequest(
            item_id="phone-1", item_name="Phone", price=price or money_pb2.Money(currency="EUR", amount_minor=129_900),
            quantity=quantity, starts_at=timestamp_pb2.Timestamp(seconds=int(now + starts_in)),
            ends_at=timestamp_pb2.Timestamp(seconds=int(now + starts_in + lasts)),
            hold_duration=duration_pb2.Duration(seconds=hold_seconds), **extra)
        if per_user_limit is not None:
            request.per_user_limit.CopyFrom(wrappers_pb2.Int32Value(value=per_user_limit))
        return self.inventory.CreateSale(request, metadata=ADMIN, timeout=10)

    def book(self, sale, who, key=None):
        return self.booking.Book(booking_pb2.BookRequest(sale_id=sale.sale_id, idempotency_key=key or str(uuid.uuid4())),
                                 metadata=user(who), timeout=10)

    def availability(self, sale):
        return self.inventory.GetAvailability(inventory_pb2.GetAvailabilityRequest(sale_id=sale.sale_id), timeout=5)


@pytest.fixture()
def platform(tmp_path):
    p = Platform(tmp_path / "sales.db")
    yield p
    p.stop()


def refusal(call):
    """Runs `call`, expecting a refusal; returns (code, ErrorInfo reason, details)."""
    with pytest.raises(grpc.RpcError) as error:
        call()
    status = rpc_status.from_call(error.value)
    details = {}
    for any_detail in (status.details if status else []):
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            message = kind()
            if any_detail.Unpack(message):
                details[kind.__name__] = message
    reason = details["ErrorInfo"].reason if "ErrorInfo" in details else None
    return error.value.code(), reason, details


def audit(store, sale_id):
    flag = store if str(store).startswith("postgres") else f"sqlite:{store}"
    return subprocess.run([binary("flashsale"), "audit", "--store", flag, "--sale", sale_id],
                          capture_output=True, text=True, timeout=60)


def test_bad_sale_definitions_name_the_field(platform):
    for extra, field in [(dict(quantity=0), "quantity"), (dict(lasts=-10), "ends_at"),
                         (dict(price=money_pb2.Money(currency="EUR", amount_minor=-1)), "price.amount_minor"),
                         (dict(price=money_pb2.Money(currency="XXX", amount_minor=100)), "price.currency"),
                         (dict(hold_seconds=-(2 ** 63)), "hold_duration"),
                         (dict(lasts=600 * 365 * 86400), "ends_at")]:
        code, reason, details = refusal(lambda: platform.create_sale(**extra))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, extra
        assert reason == "INVALID_ARGUMENT"
        assert details["BadRequest"].field_violations[0].field == field
    assert platform.server.alive()


def test_create_is_admin_only_and_idempotent(platform):
    code, _, _ = refusal(lambda: platform.inventory.CreateSale(inventory_pb2.CreateSaleRequest(), metadata=user("u"), timeout=5))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    first = platform.create_sale(idempotency_key="create-once")
    again = platform.create_sale(quantity=99, idempotency_key="create-once")
    assert again.sale_id == first.sale_id and again.quantity == first.quantity
    listed = platform.inventory.ListSales(inventory_pb2.ListSalesRequest(page_size=1), timeout=5)
    assert [s.sale_id for s in listed.sales] == [first.sale_id]
    newer = platform.create_sale()
    page1 = platform.inventory.ListSales(inventory_pb2.ListSalesRequest(page_size=1), timeout=5)
    assert [s.sale_id for s in page1.sales] == [newer.sale_id] and page1.next_page_token
    page2 = platform.inventory.ListSales(inventory_pb2.ListSalesRequest(
        page_size=1, page_token=page1.next_page_token), timeout=5)
    assert [s.sale_id for s in page2.sales] == [first.sale_id] and page2.next_page_token == ""
    code, reason, details = refusal(lambda: platform.inventory.ListSales(
        inventory_pb2.ListSalesRequest(page_token="not-ours"), timeout=5))
    assert (code, details["BadRequest"].field_violations[0].field) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")


def test_sale_window_and_pause(platform):
    later = platform.create_sale(starts_in=60)
    assert refusal(lambda: platform.book(later, "a"))[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "SALE_NOT_STARTED")
    sale = platform.create_sale()
    platform.inventory.PauseSale(inventory_pb2.PauseSaleRequest(sale_id=sale.sale_id), metadata=ADMIN, timeout=5)
    assert refusal(lambda: platform.book(sale, "a"))[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "SALE_PAUSED")
    assert platform.availability(sale).state == inventory_pb2.AVAILABILITY_STATE_PAUSED
    platform.inventory.ResumeSale(inventory_pb2.ResumeSaleRequest(sale_id=sale.sale_id), metadata=ADMIN, timeout=5)
    platform.book(sale, "a")
    platform.inventory.CloseSale(inventory_pb2.CloseSaleRequest(sale_id=sale.sale_id), metadata=ADMIN, timeout=5)
    assert refusal(lambda: platform.book(sale, "b"))[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "SALE_ENDED")


def test_hold_confirm_cancel_and_their_refusals(platform):
    sale = platform.create_sale(quantity=2)
    held = platform.book(sale, "alice", key="alice-1")
    assert held.booking.status == booking_pb2.BOOKING_STATUS_HOLD and held.units_left == 1
    assert held.booking.item_id == "phone-1" and held.booking.price.amount_minor == 129_900
    again = platform.book(sale, "alice", key="alice-1")
    assert again.replayed and again.booking.booking_id == held.booking.booking_id
    assert refusal(lambda: platform.book(sale, "alice"))[:2] == (grpc.StatusCode.ALREADY_EXISTS, "LIMIT_REACHED")
    assert refusal(lambda: platform.book(sale, "bob", key="alice-1"))[:2] == \
        (grpc.StatusCode.INVALID_ARGUMENT, "IDEMPOTENCY_KEY_REUSED")
    b = platform.book(sale, "bob")
    code, reason, details = refusal(lambda: platform.book(sale, "carol"))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "SOLD_OUT_FOR_NOW")
    assert details["RetryInfo"].retry_delay.seconds > 0

    booking_id, token = held.booking.booking_id, held.booking.fencing_token
    confirm = lambda who, t=token: platform.booking.Confirm(
        booking_pb2.ConfirmRequest(booking_id=booking_id, fencing_token=t), metadata=user(who), timeout=5)
    assert refusal(lambda: confirm("alice", token + 1))[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "STALE_FENCING_TOKEN")
    assert refusal(lambda: confirm("mallory"))[:2] == (grpc.StatusCode.NOT_FOUND, "BOOKING_NOT_FOUND")
    assert confirm("alice").booking.status == booking_pb2.BOOKING_STATUS_BOOKED
    assert confirm("alice").booking.status == booking_pb2.BOOKING_STATUS_BOOKED  # idempotent
    cancel = lambda: platform.booking.Cancel(
        booking_pb2.CancelRequest(booking_id=booking_id, fencing_token=token), metadata=user("alice"), timeout=5)
    assert refusal(cancel)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BOOKING_CONFIRMED")

    cancelled = platform.booking.Cancel(booking_pb2.CancelRequest(
        booking_id=b.booking.booking_id, fencing_token=b.booking.fencing_token), metadata=user("bob"), timeout=5)
    assert cancelled.booking.status == booking_pb2.BOOKING_STATUS_RELEASED
    platform.book(sale, "carol")  # the cancelled unit is sold again
    assert refusal(lambda: platform.booking.Release(booking_pb2.ReleaseRequest(
        booking_id=booking_id, reason="refund"), metadata=user("alice"), timeout=5))[0] == grpc.StatusCode.PERMISSION_DENIED
    released = platform.booking.Release(booking_pb2.ReleaseRequest(booking_id=booking_id, reason="refund"),
                                        metadata=ADMIN, timeout=5)
    assert released.booking.status == booking_pb2.BOOKING_STATUS_RELEASED and released.booking.release_reason == "refund"
    assert audit(platform.store, sale.sale_id).returncode == 0


def test_expired_holds_return_to_stock_within_a_second(platform):
    sale = platform.create_sale(quantity=1, hold_seconds=1)
    held = platform.book(sale, "slow")
    deadline = held.booking.hold_expires_at.seconds + held.booking.hold_expires_at.nanos / 1e9
    assert refusal(lambda: platform.book(sale, "fast"))[1] == "SOLD_OUT_FOR_NOW"
    while True:
        try:
            fast = platform.book(sale, "fast")
            break
        except grpc.RpcError:
            assert time.time() < deadline + 1.5, "the hold did not expire within a second of its deadline"
            time.sleep(0.05)
    assert time.time() - deadline < 1.5
    assert fast.booking.fencing_token > held.booking.fencing_token
    # The slow buyer can no longer confirm: the unit is someone else's.
    code, reason, _ = refusal(lambda: platform.booking.Confirm(booking_pb2.ConfirmRequest(
        booking_id=held.booking.booking_id, fencing_token=held.booking.fencing_token), metadata=user("slow"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "HOLD_EXPIRED")
    assert platform.booking.GetBooking(booking_pb2.GetBookingRequest(booking_id=held.booking.booking_id),
                                       metadata=user("slow"), timeout=5).status == booking_pb2.BOOKING_STATUS_EXPIRED


def test_holds_that_expired_while_down_are_released_at_start(tmp_path):
    platform = Platform(tmp_path / "down.db")
    try:
        sale = platform.create_sale(quantity=3, hold_seconds=1)
        for who in ["a", "b", "c"]:
            platform.book(sale, who)
        platform.stop(sig=9)
        time.sleep(1.2)
        platform.start()
        availability = platform.availability(sale)
        assert (availability.available, availability.held) == (3, 0)
    finally:
        platform.stop()


def test_idempotency_key_survives_a_restart(tmp_path):
    platform = Platform(tmp_path / "restart.db")
    try:
        sale = platform.create_sale(quantity=5)
        first = platform.book(sale, "alice", key="buy-1")
        platform.stop(sig=9)
        platform.start()
        again = platform.book(sale, "alice", key="buy-1")
        assert again.replayed and again.booking == first.booking
        assert platform.availability(sale).held == 1
    finally:
        platform.stop()


def test_watch_availability_streams_changes_with_growing_versions(platform):
    sale = platform.create_sale(quantity=50, per_user_limit=50)
    stream = platform.inventory.WatchAvailability(inventory_pb2.WatchAvailabilityRequest(sale_id=sale.sale_id), timeout=20)
    first = next(stream)
    assert first.available == 50 and first.max_staleness.ToMilliseconds() > 0
    seen = [first]
    received = [time.monotonic()]
    stop = threading.Event()

    def book_some():
        for i in range(10):
            platform.book(sale, "watcher")
            time.sleep(0.03)
        stop.set()

    threading.Thread(target=book_some).start()
    for update in stream:
        seen.append(update)
        received.append(time.monotonic())
        if update.available == 40:
            break
    stream.cancel()
    versions = [u.version for u in seen]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert all(u.available + u.held + u.booked == u.quantity for u in seen)
    # Coalesced: at most one message per 100 ms (some slack for delivery jitter).
    gaps = [(b - a) * 1000 for a, b in zip(received, received[1:])]
    assert all(g >= 70 for g in gaps), gaps
    assert len(seen) < 11  # ten holds 30 ms apart came in fewer messages
    assert platform.availability(sale).available == 40


def test_unknown_sale_is_not_found(platform):
    code, reason, _ = refusal(lambda: platform.inventory.GetAvailability(
        inventory_pb2.GetAvailabilityRequest(sale_id="sale_nope"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "SALE_NOT_FOUND")
    code, reason, _ = refusal(lambda: platform.inventory.GetAvailability(
        inventory_pb2.GetAvailabilityRequest(sale_id=""), timeout=5))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_a_burst_of_book_calls_never_oversells(platform):
    """1,000 units, 20,000 Book calls from 5,000 users at once (4 per user,
    some retried with the same key): exactly 1,000 holds, no user above the
    limit, the audit passes, and claims were batched."""
    sale = platform.create_sale(quantity=1000, per_user_limit=1)
    rng = random.Random(7)
    calls = []
    for u in range(5000):
        keys = [f"u{u}-k{k}" for k in range(3)]
        calls += [(f"user-{u}", k) for k in keys] + [(f"user-{u}", keys[0])]  # one retry with the same key
    rng.shuffle(calls)
    channels = [grpc.insecure_channel(f"127.0.0.1:{platform.server.port}") for _ in range(8)]
    stubs = [booking_grpc.BookingStub(c) for c in channels]
    outcomes = {"held": [], "refused": {}}
    lock = threading.Lock()

    def fire(i, who, key):
        future = stubs[i % len(stubs)].Book.future(
            booking_pb2.BookRequest(sale_id=sale.sale_id, idempotency_key=key), metadata=user(who), timeout=120)
        return future

    futures = []
    for i, (who, key) in enumerate(calls):
        futures.append((who, key, fire(i, who, key)))
    for who, key, future in futures:
        try:
            response = future.result()
            with lock:
                outcomes["held"].append((who, key, response.booking.booking_id, response.booking.fencing_token))
        except grpc.RpcError as error:
            status = rpc_status.from_call(error)
            info = error_details_pb2.ErrorInfo()
            reason = info.reason if status and status.details and status.details[0].Unpack(info) else error.code().name
            outcomes["refused"][reason] = outcomes["refused"].get(reason, 0) + 1
    for c in channels:
        c.close()

    bookings = {b for _, _, b, _ in outcomes["held"]}
    assert len(bookings) == 1000, (len(bookings), outcomes["refused"])
    holders = {}
    for who, _, booking, _ in outcomes["held"]:
        holders.setdefault(who, set()).add(booking)
    assert all(len(b) == 1 for b in holders.values())
    assert set(outcomes["refused"]) <= {"SOLD_OUT_FOR_NOW", "LIMIT_REACHED"}, outcomes["refused"]
    tokens = [t for _, _, _, t in outcomes["held"]]
    assert len(set(tokens)) == 1000
    time.sleep(0.2)  # one refresh of the in-memory counts
    availability = platform.availability(sale)
    assert (availability.available, availability.held) == (0, 1000)
    result = audit(platform.store, sale.sale_id)
    assert result.returncode == 0, result.stdout + result.stderr
    text = platform.metrics()
    count = float(re.search(r"flashsale_claim_batch_size_count(?:\{[^}]*\})? (\S+)", text).group(1))
    total = float(re.search(r"flashsale_claim_batch_size_sum(?:\{[^}]*\})? (\S+)", text).group(1))
    assert total / count > 1, (total, count)
    print(f"\n20,000 Book calls: {len(outcomes['held'])} answered with a hold (incl. replays), "
          f"refusals {outcomes['refused']}, mean claim batch {total / count:.1f}")

    # The units come back and are bought again until none is left.
    rest = platform.create_sale(quantity=3, per_user_limit=1)
    held = [platform.book(rest, f"r{i}") for i in range(3)]
    for h in held[:2]:
        platform.booking.Cancel(booking_pb2.CancelRequest(booking_id=h.booking.booking_id,
                                                          fencing_token=h.booking.fencing_token),
                                metadata=user(h.booking.user_id), timeout=5)
    platform.book(rest, "r3")
    platform.book(rest, "r4")
    assert refusal(lambda: platform.book(rest, "r5"))[1] == "SOLD_OUT_FOR_NOW"


def test_audit_names_corruption_written_with_sql(platform):
    sale = platform.create_sale(quantity=5, per_user_limit=1)
    a = platform.book(sale, "alice")
    platform.book(sale, "bob")
    assert audit(platform.store, sale.sale_id).returncode == 0
    platform.stop()  # no expiry job running while rows are written behind its back
    db = sqlite3.connect(platform.store)
    db.executescript(f"""
        DROP INDEX bookings_one_taker_per_unit;
        INSERT INTO bookings VALUES ('bkg_double', '{sale.sale_id}', 'carol', 0, 'hold', 0, 0, 9000000000000000000, 'x-1', 99, NULL);
        INSERT INTO bookings VALUES ('bkg_over', '{sale.sale_id}', 'alice', 1, 'booked', 0, 0, 0, 'x-2', 98, NULL);
        INSERT INTO bookings VALUES ('bkg_key', '{sale.sale_id}', 'dave', 2, 'released', 0, 0, 0, '{a.booking.idempotency_key}', 97, 'cancelled');
    """)
    db.commit()
    db.close()
    result = audit(platform.store, sale.sale_id)
    assert result.returncode == 1, result.stdout
    assert "bkg_double" in result.stdout and "unit 0 is taken" in result.stdout
    assert "user alice" in result.stdout and "bkg_over" in result.stdout
    assert f'idempotency key "{a.booking.idempotency_key}" made 2 bookings' in result.stdout and "bkg_key" in result.stdout
    missing = audit(platform.store, "sale_nope")
    assert missing.returncode == 2 and "no sale" in missing.stdout
    platform.start()  # for the fixture to stop
