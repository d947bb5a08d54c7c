"""One way to build a MinIO/S3 client from the shared settings."""

from minio import Minio

from openv_infra.settings import S3Settings


def make_minio(settings: S3Settings, *, public: bool = False) -> Minio:
    """`public=True` gives a client for presigning URLs that clients outside the cluster use.

    The region is fixed so presigning is pure computation (no bucket-location request).
    """
    endpoint = (
        (settings.s3_public_endpoint or settings.s3_endpoint) if public else settings.s3_endpoint
    )
    return Minio(
        endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
    )
