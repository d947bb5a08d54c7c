"""Kill anything mid-load, lose nothing (issue #20): a steady mixed load through the gateway
while every service is SIGKILLed and restarted, the broker restarted (durable broker only),
S3 taken away and Postgres restarted; then the invariants, printed as a table.

The schedule is seeded: the seed is printed, `--fault-seed=N` replays it."""

import threading
import time

import pytest

from openv_localstack.stack import LocalStack
from tests.faults import collect
from tests.faults.conftest import AMBIGUOUS_RUN_WAIT_S, SUBMIT_LEASE_S
from tests.faults.invariants import (
    check_applied_once,
    check_no_server_errors,
    check_objects,
    check_one_terminal_event,
    check_projections,
    check_relayed,
    check_settled,
    check_single_submission,
    log_status,
    streams,
)
from tests.faults.load import Load
from tests.faults.report import render
from tests.faults.schedule import Injector, Profile, plan

pytestmark = pytest.mark.e2e

#: The soonest a video may be sent to RunPod again after a `/run` whose outcome the bridge
#: never learnt: the dead attempt's lease, then the hold for its job to report.
RESUBMIT_BOUND_S = SUBMIT_LEASE_S + AMBIGUOUS_RUN_WAIT_S


def test_faults_lose_nothing(fault_stack: LocalStack, profile: Profile, seed: int) -> None:
    stack = fault_stack
    schedule = plan(profile, seed)
    print(f"\nfault profile {profile.name}, seed {seed} (replay: --fault-seed={seed})")
    load = Load(stack.gateway_url, profile.users, seed)
    injector = Injector(stack, profile)
    stop = threading.Event()
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            load.run(profile.videos, profile.load_s, profile.other_ops_per_s, stop)
        except BaseException as exc:
            failure.append(exc)

    started = time.monotonic()
    driver = threading.Thread(target=drive, name="load")
    driver.start()
    try:
        for fault in schedule:
            time.sleep(max(0.0, started + fault.at_s - time.monotonic()))
            injector.inject(fault, started)
    finally:
        driver.join(timeout=profile.load_s + 300)
        stop.set()
        load.close()
    assert not failure, failure
    load_s = time.monotonic() - started

    stats = load.stats
    views, waited = collect.wait_settled(stack, stats.videos, load.tokens, profile.settle_bound_s)
    events = collect.event_log(stack)
    known = set(stats.videos)
    # A create never answered may still have made its video: then it must settle too.
    in_log = {e.video_id for e in events}
    unknown = in_log - known - set(stats.unanswered)
    late = {vid: user for vid, user in stats.unanswered.items() if vid in in_log}
    if late:
        more, _ = collect.wait_settled(stack, late, load.tokens, 30)
        views.update(more)
        known |= set(late)
    # The log may be ahead of a view read a moment earlier (a delete accepted just before the
    # load stopped): those views get 30 s to catch up; one that does not still breaks
    # "log = view" below.
    by_video = streams(events)
    owners = {**stats.videos, **late}
    behind = {
        vid: (owners[vid], status)
        for vid in known
        if (status := log_status(by_video.get(vid, []))) is not None
        and (views.get(vid) or {}).get("status") != status
    }
    if behind:
        views.update(collect.wait_caught_up(stack, behind, load.tokens, 30))
    checks = [
        check_settled(known, views, profile.settle_bound_s),
        check_one_terminal_event(known, events, views),
        check_single_submission(collect.sim_jobs(stack), RESUBMIT_BOUND_S),
        check_objects(events, collect.object_keys(stack)),
        check_projections(*collect.projections(stack)),
        check_relayed(events, collect.video_events(stack)),
        check_applied_once(events, collect.storage_facts(stack)),
        check_no_server_errors(stats.answers, stats.bad),
    ]
    title = (
        f"fault profile {profile.name}, seed {seed}: {len(stats.videos)} videos acknowledged "
        f"({len(stats.unanswered)} creates unanswered, {stats.create_retries} create retries), "
        f"load {load_s:.0f} s, settled after {waited:.0f} s "
        f"(bound {profile.settle_bound_s:.0f} s); "
        f"bridge lease {SUBMIT_LEASE_S} s"
    )
    print("\n" + render(title, injector.records, checks, stats.answers) + "\n")
    assert not unknown, f"videos in the log that no create asked for: {sorted(unknown)[:5]}"
    failed_faults = [f for f in injector.records if f.outcome.startswith("FAILED")]
    assert not failed_faults, failed_faults
    broken = [c for c in checks if not c.ok]
    assert not broken, "\n".join(f"{c.name}: {c.detail}" for c in broken)
