"""What the mutation run mutates, and the tests each module's mutants are run against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    files: tuple[str, ...]
    tests: tuple[str, ...]


_HS = "tests/homeserver/"

TARGETS: dict[str, Target] = {
    "event_auth": Target(
        ("homeserver/services/event_auth.py", "homeserver/services/event_auth_members.py"),
        tuple(_HS + name for name in ("test_event_auth_rules.py", "test_event_auth_members.py",
                                      "test_room_authorization.py", "test_rooms.py", "test_room_versions.py",
                                      "test_state_res.py", "test_events_messages.py"))),
    "sync": Target(
        ("homeserver/services/sync.py", "homeserver/services/sync_api.py"),
        tuple(_HS + name for name in ("test_sync_delivery.py", "test_sync.py", "test_wakeups.py",
                                      "test_wakeups_by_room.py", "test_sync_filters.py", "test_sync_v1.py",
                                      "test_sync_concurrency.py", "test_history_visibility.py",
                                      "test_to_device.py", "test_keys_sync.py", "test_ignored_users.py",
                                      "test_sync_sections.py", "test_sync_woken_builds.py",
                                      "test_sync_lazy_members.py", "test_sync_newly_joined.py",
                                      "test_sync_summary.py"))),
    "to_device": Target(
        ("homeserver/services/to_device.py",),
        tuple(_HS + name for name in ("test_to_device.py", "test_sync_delivery.py", "test_wakeups.py"))),
    "keys": Target(
        ("homeserver/services/keys.py",),
        tuple(_HS + name for name in ("test_keys.py", "test_keys_sync.py", "test_keys_concurrency.py",
                                      "test_keys_kem.py", "test_cross_signing.py", "test_nio_keys.py",
                                      "test_keys_bounds.py"))),
    "notifier": Target(
        ("homeserver/notifier.py",),
        tuple(_HS + name for name in ("test_wakeups.py", "test_wakeups_by_room.py", "test_multi_instance.py",
                                      "test_sync_delivery.py", "test_redis_down.py"))),
    "crypto": Target(
        tuple(f"common/crypto/{name}.py" for name in
              ("double_ratchet", "x3dh", "sender_keys", "envelope", "primitives")),
        ("tests/common",)),
}
