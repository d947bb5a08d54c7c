"""The storage service's pure rules: key scheme, SSRF address rules, MP4 check, retry schedule,
sweep decisions."""

import ipaddress
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from openv_contracts.queries import VideoView
from openv_contracts.storage_keys import video_output_key, video_prefix
from openv_contracts.video import VideoParams, VideoStatus
from openv_infra.addresses import AddressPolicy, is_public
from openv_infra.mp4 import looks_like_mp4
from openv_storage.config import Settings
from openv_storage.domain.imports import ImportRefused, check_url, declared_size_too_large
from openv_storage.domain.keys import VideoKey, is_video_prefix, key_belongs_to, parse_video_key
from openv_storage.domain.retry import RetryPolicy
from openv_storage.domain.sweep import (
    Fate,
    StoredObject,
    fate_of,
    group_by_video,
    missing_object,
    orphans,
    unknown_removal_allowed,
)

VID = UUID("3f2b8a58-3c1e-4d51-9d84-5a1f6a0c2b7e")

# --------------------------------------------------------------------------- keys


def test_the_shared_key_scheme_parses_back_to_its_video() -> None:
    assert video_prefix("alice", VID) == f"videos/alice/{VID}/"
    assert parse_video_key(video_output_key("alice", VID)) == VideoKey("alice", VID)
    assert parse_video_key(f"videos/alice/{VID}/thumbs/1.jpg") == VideoKey("alice", VID)
    assert VideoKey("alice", VID).prefix == video_prefix("alice", VID)


@pytest.mark.parametrize(
    "key",
    [
        f"other/alice/{VID}/video.mp4",
        f"videos/alice/{VID}/",
        f"videos/alice/{VID}",
        f"videos//{VID}/video.mp4",
        f"videos/alice/{str(VID).upper()}/video.mp4",  # not the canonical form
        f"videos/alice/{VID.hex}/video.mp4",
        "videos/alice/not-a-uuid/video.mp4",
        f"videos/alice/{VID}/../bob/video.mp4",
        f"videos/alice/{VID}/./video.mp4",
        f"videos/alice/{VID}//video.mp4",
        f"videos/../{VID}/video.mp4",
        "videos/README.txt",
    ],
)
def test_keys_outside_the_scheme_are_not_parsed(key: str) -> None:
    assert parse_video_key(key) is None


def test_a_video_prefix_is_exactly_one_videos_prefix() -> None:
    assert is_video_prefix(f"videos/alice/{VID}/", VID)
    assert not is_video_prefix(f"videos/alice/{VID}/", uuid4())
    for broader in ("", "videos/", "videos/alice/", f"videos/alice/{VID}", f"videos/{VID}/"):
        assert not is_video_prefix(broader, VID), broader
    assert not is_video_prefix(f"videos/a/b/{VID}/", VID)
    assert not is_video_prefix(f"videos/../{VID}/", VID)


def test_key_belongs_to_checks_video_and_user() -> None:
    key = video_output_key("alice", VID)
    assert key_belongs_to(key, VID, "alice")
    assert key_belongs_to(key, VID, None)
    assert not key_belongs_to(key, VID, "bob")
    assert not key_belongs_to(key, uuid4(), "alice")


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.0.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",
        "100.100.100.200",  # Alibaba metadata
        "0.0.0.0",
        "0.1.2.3",
        "192.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",  # multicast (is_global says True in Python 3.11)
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::127.0.0.1",  # IPv4-compatible (is_global says True)
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1 (is_global says True)
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1 (is_global says True)
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2001::1",  # Teredo
        "2001:db8::1",
        "fc00::1",
        "fd00:ec2::254",  # AWS IPv6 metadata
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "100::1",
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    assert not AddressPolicy().allows(ip)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert is_public(ip)
    assert AddressPolicy().allows(ip)


def test_private_hosts_when_allowed_but_never_unspecified_or_multicast() -> None:
    policy = AddressPolicy(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.1", "::1", "169.254.169.254", "fd00::1"):
        assert policy.allows(ipaddress.ip_address(address)), address
    for address in ("0.0.0.0", "::", "224.0.0.1", "ff02::1"):
        assert not policy.allows(ipaddress.ip_address(address)), address


def test_allowed_networks_open_just_those_ranges() -> None:
    policy = AddressPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    assert policy.allows(ipaddress.ip_address("10.20.3.4"))
    assert not policy.allows(ipaddress.ip_address("10.21.0.1"))
    assert not policy.allows(ipaddress.ip_address("127.0.0.1"))


def test_settings_build_the_policies() -> None:
    settings = Settings(
        import_allow_private_hosts=False,
        import_allowed_networks=["10.20.0.0/16"],
        retry_attempts=4,
        retry_backoff_s=0.25,
        retry_backoff_max_s=1.0,
    )
    assert settings.address_policy == AddressPolicy(False, (ipaddress.ip_network("10.20.0.0/16"),))
    assert settings.retry_policy == RetryPolicy(4, 0.25, 1.0)
    assert Settings().import_allow_private_hosts is False
    with pytest.raises(ValueError):
        Settings(import_allowed_networks=["not-a-network"])


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.com/v.mp4", "example.com"),
        ("HTTPS://Example.COM:8443/v.mp4?sig=1", "example.com"),
        ("http://[2606:4700::1]/v.mp4", "2606:4700::1"),
    ],
)
def test_http_and_https_urls_are_accepted(url: str, host: str) -> None:
    assert check_url(url) == host


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/v.mp4",
        "gopher://example.com/",
        "javascript:alert(1)",
        "data:video/mp4;base64,AAAA",
        "ws://example.com/",
        "example.com/v.mp4",
        "http:///v.mp4",
        "http://example.com:0x50/v.mp4",
        "http://[::1/v.mp4",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ImportRefused):
        check_url(url)


# --------------------------------------------------------------------------- content


def test_an_mp4_is_recognised_by_its_ftyp_box() -> None:
    assert looks_like_mp4(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00")
    assert looks_like_mp4(b"\x00\x00\x00\x01ftyp")  # 64-bit size follows
    assert not looks_like_mp4(b"\x00\x00\x00\x20moov")
    assert not looks_like_mp4(b"\x00\x00\x00\x04ftyp")  # a box cannot be 4 bytes
    assert not looks_like_mp4(b"\x00\x00\x00")
    assert not looks_like_mp4(b"<!DOCTYPE html>")
    assert not looks_like_mp4(b"")


def test_a_declared_length_over_the_cap_is_refused_early() -> None:
    assert declared_size_too_large("1001", 1000)
    assert not declared_size_too_large("1000", 1000)
    assert not declared_size_too_large(None, 1000)
    assert not declared_size_too_large("lots", 1000)


# --------------------------------------------------------------------------- retries


def test_backoff_doubles_up_to_its_cap_and_the_budget_adds_up() -> None:
    policy = RetryPolicy(attempts=6, base_s=0.5, max_s=3.0)
    assert policy.delays() == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.budget_s(per_attempt_s=1.0) == 6 + 9.5
    assert RetryPolicy(attempts=1).delays() == []
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


# --------------------------------------------------------------------------- sweep

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=1)


def view(status: VideoStatus, user: str = "alice", file_deleted: bool = False) -> VideoView:
    return VideoView(
        id=VID,
        user_id=user,
        status=status,
        progress=None,
        prompt="p",
        params=VideoParams(seed=1),
        duration_seconds=1.0,
        created_at=NOW,
        updated_at=NOW,
        object_key=video_output_key(user, VID) if status is VideoStatus.COMPLETED else None,
        file_deleted=file_deleted,
        version=1,
    )


def test_fate_follows_the_jobs_view() -> None:
    key = VideoKey("alice", VID)
    assert fate_of(key, None) is Fate.UNKNOWN
    assert fate_of(key, view(VideoStatus.DELETED)) is Fate.DELETED
    assert fate_of(key, view(VideoStatus.DELETED, user="bob")) is Fate.UNKNOWN
    assert fate_of(key, view(VideoStatus.COMPLETED, user="bob")) is Fate.UNKNOWN
    for status in VideoStatus:
        if status is not VideoStatus.DELETED:
            assert fate_of(key, view(status)) is Fate.LIVE, status


def test_only_old_objects_of_deleted_or_unknown_videos_are_orphans() -> None:
    old = StoredObject("k-old", NOW - GRACE - timedelta(seconds=1))
    young = StoredObject("k-young", NOW - GRACE + timedelta(seconds=1))
    objects = [old, young]
    assert orphans(objects, Fate.LIVE, NOW, GRACE) == []
    assert orphans(objects, Fate.DELETED, NOW, GRACE) == [old]
    assert orphans(objects, Fate.UNKNOWN, NOW, GRACE) == [old]


def test_objects_are_grouped_per_video_and_odd_keys_set_apart() -> None:
    other = uuid4()
    objects = [
        StoredObject(video_output_key("alice", VID), NOW),
        StoredObject(f"{video_prefix('alice', VID)}poster.jpg", NOW),
        StoredObject(video_output_key("bob", other), NOW),
        StoredObject("videos/README.txt", NOW),
    ]
    grouped = group_by_video(objects)
    sizes = {g.video: len(g.objects) for g in grouped.videos}
    assert sizes == {VideoKey("alice", VID): 2, VideoKey("bob", other): 1}
    assert [o.key for o in grouped.unrecognised] == ["videos/README.txt"]


def test_a_completed_video_without_its_object_is_missing() -> None:
    completed = view(VideoStatus.COMPLETED)
    assert missing_object(completed, set()) == completed.object_key
    assert missing_object(completed, {video_output_key("alice", VID)}) is None
    assert missing_object(view(VideoStatus.RUNNING), set()) is None
    assert missing_object(view(VideoStatus.DELETED), set()) is None


def test_the_circuit_breaker_holds_back_unknowns_only_when_they_dominate() -> None:
    assert unknown_removal_allowed(10, 0)  # a few orphans are removed even alone
    assert unknown_removal_allowed(11, 11)
    assert unknown_removal_allowed(500, 900)
    assert not unknown_removal_allowed(11, 10)
    assert not unknown_removal_allowed(5000, 3)  # the jobs service knows (almost) nothing


def test_a_completed_videos_poster_is_neither_stray_nor_missing_its_file() -> None:
    """The poster lives in the video's prefix: it follows the scheme, belongs to a live video
    (kept), is removed with a deleted one, and a video missing only its poster is not
    reported as missing its file."""
    from openv_contracts.storage_keys import video_poster_key
    from openv_storage.domain.sweep import group_by_video, orphans

    poster = StoredObject(video_poster_key("alice", VID), NOW - GRACE * 100)
    grouped = group_by_video([poster, StoredObject(video_output_key("alice", VID), NOW)])
    assert grouped.unrecognised == []
    [objects] = grouped.videos
    assert objects.video == VideoKey("alice", VID)
    completed = view(VideoStatus.COMPLETED).model_copy(
        update={"poster_key": video_poster_key("alice", VID)}
    )
    assert orphans([poster], fate_of(objects.video, completed), NOW, GRACE) == []
    assert orphans([poster], fate_of(objects.video, view(VideoStatus.DELETED)), NOW, GRACE) == [
        poster
    ]
    assert missing_object(completed, {video_output_key("alice", VID)}) is None
