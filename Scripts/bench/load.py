"""What the bench clients share: invented nominations, and a measured run of prepared calls
from many threads with the CPU the server and PostgreSQL spent on them."""
import os
import random
import sys
import threading
import time

import grpc


def pinfl(female):
    """An invented PINFL of the 1950s-1990s with a valid check digit."""
    body = f"{4 if female else 3}{random.randrange(1, 28):02d}{random.randrange(1, 13):02d}{random.randrange(50, 99)}{random.randrange(10**6):06d}"
    return body + str(sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(body)) % 10)


def nomination(forms_pb2, common_pb2):
    """A district council nomination of five, two of them women."""
    nominees = [forms_pb2.ConstituencyNominee(
        person=forms_pb2.PersonDetails(pinfl=pinfl(i < 2), name=common_pb2.PersonName(last_name="Karimova", first_name="Dilnoza"),
                                       phone=f"+99890{random.randrange(10**7):07d}", occupation="teacher", workplace="School No. 5"),
        constituency_number=i + 1, party_member=True) for i in range(5)]
    return forms_pb2.RequestForm(candidate_nomination=forms_pb2.CandidateNominationForm(
        election_kind=common_pb2.ELECTION_KIND_DISTRICT_COUNCIL, nominees=nominees,
        party_decision=forms_pb2.DocumentReference(number="12/2026", date=common_pb2.CalendarDate(year=2026, month=11, day=30))))


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def postgres_pids():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if open(f"/proc/{p}/comm").read().strip() == "postgres":
                    out.append(int(p))
            except OSError:
                pass
    return out


def measure(name, unit, items, call, concurrency, server_pid):
    """Runs `call(item)` for every item from `concurrency` threads and prints
    "NAME: N in S s: R/s, p99 MS ms, CPU per UNIT: server US us, PostgreSQL US us, failed F"."""
    lock = threading.Lock()
    latencies, failures = [], [0]
    queue = list(items)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            began = time.monotonic()
            try:
                call(item)
                with lock:
                    latencies.append(time.monotonic() - began)
            except grpc.RpcError as e:
                with lock:
                    failures[0] += 1
                    if failures[0] == 1:
                        print(f"{name}: first failure: {e.code()} {e.details()}", file=sys.stderr)

    hz = os.sysconf("SC_CLK_TCK")
    pg = postgres_pids()
    server_before, pg_before = cpu_ticks([server_pid]), cpu_ticks(pg)
    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - began
    server_cpu, pg_cpu = (cpu_ticks([server_pid]) - server_before) / hz, (cpu_ticks(pg) - pg_before) / hz
    latencies.sort()
    done = len(latencies)
    p99 = latencies[int(done * 0.99)] * 1000 if latencies else 0
    print(f"{name}: {done} in {took:.1f} s: {done / took:.0f}/s, p99 {p99:.1f} ms, CPU per {unit}: "
          f"server {server_cpu / max(done, 1) * 1e6:.0f} us, PostgreSQL {pg_cpu / max(done, 1) * 1e6:.0f} us, failed {failures[0]}")
