"""Counters of what the storage service did, for logs, health details and tests."""

from dataclasses import asdict, dataclass


@dataclass
class StorageStats:
    #: VideoDeleted handled to the end (objects gone, StorageObjectsDeleted published).
    deletions: int = 0
    #: Failed attempts at removing a video's objects (each retried until the budget is spent).
    deletion_failures: int = 0
    #: Deletions whose retry budget ran out (dead-lettered).
    deletions_given_up: int = 0
    imports: int = 0
    import_failures: int = 0
    #: Failed attempts inside imports (S3 or the source), retried.
    import_retries: int = 0
    #: Posters stored and reported; completed videos left without one (undecodable, too large).
    posters: int = 0
    posters_skipped: int = 0
    sweeps: int = 0
    swept_objects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
