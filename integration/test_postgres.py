"""The sale core on PostgreSQL, shared by several `flashsale serve`
processes: together they never oversell, and the audit reads the rows.
Needs FLASHSALE_TEST_POSTGRES_URL (make test starts a throwaway cluster)."""
import os
import random
import re
import subprocess
import threading
import time
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from test_sale_core import Platform, audit, booking_pb2, booking_grpc, refusal, user

BASE = os.environ.get("FLASHSALE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(BASE is None, reason="FLASHSALE_TEST_POSTGRES_URL is not set (make test sets it)")


def fresh_database():
    """A new database on the test cluster; returns its URL."""
    name = "it_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", "-X", "-q", BASE, "-c", f"CREATE DATABASE {name}"], check=True, timeout=60)
    return BASE.rsplit("/", 1)[0] + "/" + name


def psql(url, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True, timeout=60)


def test_two_instances_on_one_database_never_oversell():
    url = fresh_database()
    first, second = Platform(url), Platform(url)
    try:
        sale = first.create_sale(quantity=1000, per_user_limit=1)
        calls = [(f"user-{u}", f"u{u}-k{k}") for u in range(5000) for k in range(2)]
        random.Random(11).shuffle(calls)
        channels = [grpc.insecure_channel(f"127.0.0.1:{p.server.port}") for p in (first, second) for _ in range(3)]
        stubs = [booking_grpc.BookingStub(c) for c in channels]
        futures = [(who, stubs[i % len(stubs)].Book.future(
            booking_pb2.BookRequest(sale_id=sale.sale_id, idempotency_key=key), metadata=user(who), timeout=120))
            for i, (who, key) in enumerate(calls)]
        held, refused = {}, {}
        for who, future in futures:
            try:
                response = future.result()
                held.setdefault(who, set()).add(response.booking.booking_id)
            except grpc.RpcError as error:
                status = rpc_status.from_call(error)
                info = error_details_pb2.ErrorInfo()
                reason = info.reason if status and status.details and status.details[0].Unpack(info) else error.code().name
                refused[reason] = refused.get(reason, 0) + 1
        for c in channels:
            c.close()
        bookings = set().union(*held.values())
        assert len(bookings) == 1000, (len(bookings), refused)
        assert all(len(b) == 1 for b in held.values())
        assert set(refused) <= {"SOLD_OUT_FOR_NOW", "LIMIT_REACHED"}, refused
        result = audit(url, sale.sale_id)
        assert result.returncode == 0, result.stdout + result.stderr
        # A hold cancelled on one instance is bought on the other.
        who = next(iter(held))
        booking_id = next(iter(held[who]))
        record = first.booking.GetBooking(booking_pb2.GetBookingRequest(booking_id=booking_id), metadata=user(who), timeout=5)
        first.booking.Cancel(booking_pb2.CancelRequest(booking_id=booking_id, fencing_token=record.fencing_token),
                             metadata=user(who), timeout=5)
        # The other instance learns of the returned unit within its staleness bound (100 ms).
        import time
        deadline = time.time() + 1.0
        while True:
            try:
                again = second.book(sale, "late-buyer")
                break
            except grpc.RpcError:
                assert time.time() < deadline, "the returned unit did not show on the other instance within 1 s"
                time.sleep(0.02)
        assert again.booking.fencing_token > record.fencing_token
        assert refusal(lambda: first.book(sale, "too-late"))[1] == "SOLD_OUT_FOR_NOW"
    finally:
        first.stop()
        second.stop()


def test_a_retry_racing_its_first_attempt_on_another_instance_gets_the_same_booking():
    """The same key sent to two instances at once: one claim, and both
    answers are that booking (never LIMIT_REACHED, never a second unit)."""
    url = fresh_database()
    first, second = Platform(url), Platform(url)
    try:
        sale = first.create_sale(quantity=1000, per_user_limit=1)
        pairs = []
        for u in range(300):
            request = booking_pb2.BookRequest(sale_id=sale.sale_id, idempotency_key=f"twice-{u}")
            pairs.append([p.booking.Book.future(request, metadata=user(f"twin-{u}"), timeout=60) for p in (first, second)])
        for a, b in pairs:
            ra, rb = a.result(), b.result()
            assert ra.booking.booking_id == rb.booking.booking_id
            assert ra.replayed != rb.replayed
        # Both instances' counts show the 300 holds within their staleness bound.
        import time
        deadline = time.time() + 1.0
        while any(p.availability(sale).held != 300 for p in (first, second)):
            assert time.time() < deadline, [p.availability(sale).held for p in (first, second)]
            time.sleep(0.05)
        result = audit(url, sale.sale_id)
        assert result.returncode == 0, result.stdout
        assert "held 300" in result.stdout
    finally:
        first.stop()
        second.stop()


def test_a_batch_whose_commit_fails_acknowledges_none_of_its_claims():
    """A deferred trigger fails, at COMMIT, every transaction that holds a
    unit for the user "poison": the claim batch that carries it commits
    nothing and answers none of its calls with a hold. Every call answered
    with a hold has it in the store; every other call has no booking."""
    url = fresh_database()
    platform = Platform(url)
    try:
        sale = platform.create_sale(quantity=1000, per_user_limit=1)
        psql(url, """
            CREATE FUNCTION poison_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.user_id = 'poison' THEN RAISE EXCEPTION 'injected commit failure'; END IF;
              RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER poison_at_commit AFTER INSERT ON bookings
              DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison_at_commit();
        """)
        buyers = [f"buyer-{i}" for i in range(400)]
        buyers.insert(200, "poison")
        channel = grpc.insecure_channel(f"127.0.0.1:{platform.server.port}")
        stub = booking_grpc.BookingStub(channel)
        futures = [(who, stub.Book.future(booking_pb2.BookRequest(sale_id=sale.sale_id, idempotency_key=f"key-{who}"),
                                          metadata=user(who), timeout=60)) for who in buyers]
        held, failed = {}, {}
        for who, future in futures:
            try:
                held[who] = future.result().booking.booking_id
            except grpc.RpcError as error:
                failed[who] = error.code()
        channel.close()
        assert "poison" in failed and failed["poison"] == grpc.StatusCode.UNAVAILABLE, failed.get("poison")
        assert set(failed.values()) == {grpc.StatusCode.UNAVAILABLE}, failed
        stored = subprocess.run(
            ["psql", "-X", "-Atq", url, "-c",
             f"SELECT user_id, id FROM bookings WHERE sale_id = '{sale.sale_id}' AND status = 'hold'"],
            check=True, capture_output=True, text=True, timeout=60).stdout.split()
        assert dict(line.split("|") for line in stored) == held
        result = audit(url, sale.sale_id)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        platform.stop()


def memory_refusals(platform, key_check):
    """flashsale_book_refused_from_memory_total{key_check=...} of one instance."""
    match = re.search(r'flashsale_book_refused_from_memory_total\{key_check="%s"\} (\d+)' % key_check,
                      platform.metrics())
    return int(match.group(1)) if match else 0


def test_a_sold_out_sale_is_refused_from_memory_on_every_instance_and_retries_still_get_their_booking():
    """The restock delay lets an instance that did not make the holds refuse a
    sold-out Book without reading its key; a retry of a key that made a hold
    on the other instance still gets that hold, before and after the unit
    comes back and goes to someone else."""
    url = fresh_database()
    first, second = Platform(url), Platform(url)
    try:
        sale = first.create_sale(quantity=2, per_user_limit=1)
        a = first.book(sale, "a", key="key-a")
        b = first.book(sale, "b", key="key-b")
        # The second instance sees the sale sold out (for now: two holds).
        deadline = time.time() + 2.0
        while True:
            code, reason, _ = refusal(lambda: second.book(sale, "c", key=f"key-c-{time.time()}"))
            if memory_refusals(second, "memory") > 0:
                break
            assert time.time() < deadline, "the second instance never refused from memory"
            time.sleep(0.05)
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "SOLD_OUT_FOR_NOW")
        before = memory_refusals(second, "memory")
        for i in range(50):
            assert refusal(lambda: second.book(sale, f"new-{i}", key=f"new-key-{i}"))[1] == "SOLD_OUT_FOR_NOW"
        assert memory_refusals(second, "memory") >= before + 50
        # Retries of the first instance's holds, sent to the second: the same bookings.
        assert second.book(sale, "a", key="key-a").booking.booking_id == a.booking.booking_id
        assert second.book(sale, "b", key="key-b").booking.booking_id == b.booking.booking_id
        # A's hold is cancelled on the first instance and the unit is bought
        # through the second at once (the claim waits out the restock delay).
        first.booking.Cancel(booking_pb2.CancelRequest(booking_id=a.booking.booking_id,
                                                       fencing_token=a.booking.fencing_token),
                             metadata=user("a"), timeout=5)
        deadline = time.time() + 2.0
        while True:
            try:
                d = second.book(sale, "d", key="key-d")
                break
            except grpc.RpcError:
                assert time.time() < deadline, "the returned unit was not bought within 2 s"
                time.sleep(0.02)
        assert d.booking.fencing_token > b.booking.fencing_token
        # Sold out again: every instance answers each key's retry with its own booking.
        time.sleep(0.3)
        for p in (first, second):
            assert p.book(sale, "d", key="key-d").booking.booking_id == d.booking.booking_id
            released = p.book(sale, "a", key="key-a")
            assert released.booking.booking_id == a.booking.booking_id
            assert released.booking.status == booking_pb2.BOOKING_STATUS_RELEASED
            assert refusal(lambda: p.book(sale, "e", key=f"key-e-{p.server.port}"))[1] == "SOLD_OUT_FOR_NOW"
        result = audit(url, sale.sale_id)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        first.stop()
        second.stop()


def test_audit_names_corruption_written_with_sql_on_postgres():
    url = fresh_database()
    platform = Platform(url)
    try:
        sale = platform.create_sale(quantity=5, per_user_limit=1)
        platform.book(sale, "alice")
        platform.book(sale, "bob")
        assert audit(url, sale.sale_id).returncode == 0
        platform.stop()  # no expiry job running while rows are written behind its back
        psql(url, f"""
            DROP INDEX bookings_one_taker_per_unit;
            INSERT INTO bookings VALUES ('bkg_double', '{sale.sale_id}', 'carol', 0, 'hold', 0, 0, 9000000000000000000, 'x-1', 99, NULL);
            INSERT INTO bookings VALUES ('bkg_over', '{sale.sale_id}', 'alice', 3, 'booked', 0, 0, 0, 'x-2', 98, NULL);
            INSERT INTO bookings VALUES ('bkg_key', '{sale.sale_id}', 'dave', 4, 'released', 0, 0, 0, 'x-2', 97, 'cancelled');
        """)
        result = audit(url, sale.sale_id)
        assert result.returncode == 1, result.stdout
        assert "bkg_double" in result.stdout and "unit 0 is taken" in result.stdout, result.stdout
        assert "user alice" in result.stdout and "bkg_over" in result.stdout
        assert "user_holdings counts 1 units, the bookings take 2" in result.stdout
        assert 'idempotency key "x-2" made 2 bookings: bkg_key, bkg_over' in result.stdout, result.stdout
    finally:
        platform.stop()


def test_idempotency_and_expiry_on_postgres():
    url = fresh_database()
    platform = Platform(url)
    try:
        sale = platform.create_sale(quantity=1, hold_seconds=1)
        first = platform.book(sale, "slow", key="slow-1")
        platform.stop(sig=9)
        platform.start()
        again = platform.book(sale, "slow", key="slow-1")
        assert again.replayed and again.booking.booking_id == first.booking.booking_id
        import time
        deadline = time.time() + 5
        while True:
            try:
                platform.book(sale, "fast")
                break
            except grpc.RpcError:
                assert time.time() < deadline
                time.sleep(0.1)
    finally:
        platform.stop()


def test_claims_cancels_and_expiry_on_two_instances_neither_fail_nor_break_the_invariant():
    """Holds of 1 s on 300 units: 8 clients book and cancel on two instances
    for 6 s while both expiry jobs run. Every call is answered with a hold or
    a refusal (no UNAVAILABLE from a deadlock or a lost race), and the audit
    passes afterwards."""
    import threading
    import time
    url = fresh_database()
    first, second = Platform(url), Platform(url)
    try:
        sale = first.create_sale(quantity=300, per_user_limit=1, hold_seconds=1)
        errors, held, cancelled = [], [0], [0]
        lock = threading.Lock()
        stop = time.time() + 6

        def client(n):
            platform = (first, second)[n % 2]
            k = 0
            while time.time() < stop:
                k += 1
                who = f"c{n}-{k % 40}"
                try:
                    r = platform.book(sale, who, key=f"c{n}-{k}")
                    with lock:
                        held[0] += 1
                    if k % 3 == 0:
                        platform.booking.Cancel(booking_pb2.CancelRequest(
                            booking_id=r.booking.booking_id, fencing_token=r.booking.fencing_token),
                            metadata=user(who), timeout=10)
                        with lock:
                            cancelled[0] += 1
                except grpc.RpcError as error:
                    status = rpc_status.from_call(error)
                    info = error_details_pb2.ErrorInfo()
                    reason = info.reason if status and status.details and status.details[0].Unpack(info) else ""
                    if error.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ALREADY_EXISTS,
                                            grpc.StatusCode.FAILED_PRECONDITION):
                        with lock:
                            errors.append((error.code().name, reason, error.details()))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], errors[:5]
        assert held[0] > 300, held  # units came back (cancel, expiry) and were sold again
        time.sleep(1.5)  # let the last holds expire
        result = audit(url, sale.sale_id)
        assert result.returncode == 0, result.stdout
        print(f"\n{held[0]} holds, {cancelled[0]} cancels on two instances, no failed call; audit passed")
    finally:
        first.stop()
        second.stop()
