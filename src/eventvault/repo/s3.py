"""A store on S3-compatible object storage (AWS, SeaweedFS, MinIO, moto...) through boto3.

Endpoint, credentials and region come from the standard AWS variables (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`) or boto3's other usual
sources. An object is visible only once complete: small ones are one PUT; a package larger
than the multipart threshold is uploaded in parts from the local file, and S3 shows it only
when the upload is completed, which is the last request (an aborted one is cleaned up).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from eventvault.progress import Progress
from eventvault.repo.store import SMALL_OBJECT_LIMIT, ObjectInfo, ObjectMissing, StoreError

PART_SIZE = 8 << 20  # multipart threshold and part size: memory per transfer is a few parts
T = TypeVar("T")


def split_location(location: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, "prefix/"); the prefix may be empty."""
    rest = location[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StoreError(f"{location}: give a bucket, as in s3://bucket/prefix")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3Store:
    def __init__(self, location: str) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError:
            raise StoreError(f"{location}: S3 needs boto3 (pip install 'eventvault[s3]')") from None
        self.location = location.rstrip("/")
        self.bucket, self.prefix = split_location(location)
        self._client = boto3.session.Session().client(
            "s3", config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                connect_timeout=10, read_timeout=60))
        self._transfer = TransferConfig(multipart_threshold=PART_SIZE,
                                        multipart_chunksize=PART_SIZE, max_concurrency=4)

    @contextmanager
    def _errors(self, action: str, name: str = "") -> Iterator[None]:
        """boto3's many exceptions, as one line naming the store and the object."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"{self.location}/{name}" if name else self.location
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(f"{where} does not exist") from None
            if code == "NoSuchBucket":
                raise StoreError(f"{self.location}: bucket {self.bucket} does not exist") from None
            raise StoreError(f"{where}: cannot {action} ({code}: "
                             f"{error.get('Message', exc)})") from None
        except (BotoCoreError, Boto3Error) as exc:
            cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
            raise StoreError(f"{where}: cannot {action} ({cause})") from None

    def _call(self, action: str, name: str, call: Callable[[], T]) -> T:
        with self._errors(action, name):
            return call()
        raise AssertionError("unreachable")  # pragma: no cover

    def put_file(self, name: str, source: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        counted = _Counted(os.path.getsize(source), progress) if progress else None
        self._call("upload", name, lambda: self._client.upload_file(
            os.fspath(source), self.bucket, self.prefix + name, Config=self._transfer,
            Callback=counted))

    def get_file(self, name: str, target: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        counted = None
        if progress:  # the size, for the bar only: one more request when one is drawn
            size = self._call("download", name, lambda: self._client.head_object(
                Bucket=self.bucket, Key=self.prefix + name)["ContentLength"])
            counted = _Counted(int(size), progress)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as file:
            self._call("download", name, lambda: self._client.download_fileobj(
                self.bucket, self.prefix + name, file, Config=self._transfer,
                Callback=counted))

    def put_bytes(self, name: str, data: bytes) -> None:
        self._call("upload", name, lambda: self._client.put_object(
            Bucket=self.bucket, Key=self.prefix + name, Body=data))

    def get_bytes(self, name: str) -> bytes:
        def read() -> bytes:
            response: dict[str, Any] = self._client.get_object(
                Bucket=self.bucket, Key=self.prefix + name)
            if response.get("ContentLength", 0) > SMALL_OBJECT_LIMIT:
                raise StoreError(f"{self.location}/{name} is too large for a metadata object")
            return response["Body"].read(SMALL_OBJECT_LIMIT + 1)

        return self._call("download", name, read)

    def list(self, prefix: str) -> list[ObjectInfo]:
        def walk() -> list[ObjectInfo]:
            found = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(item["Key"][len(self.prefix):], int(item["Size"])))
            return sorted(found, key=lambda info: info.name)

        return self._call("list", "", walk)

    def delete(self, name: str) -> None:
        self._call("delete", name, lambda: self._client.delete_object(
            Bucket=self.bucket, Key=self.prefix + name))

    def prepare(self) -> None:
        """For `repo init`: make the bucket if it is not there yet."""
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError:
            pass
        region = self._client.meta.region_name
        where = ({} if region in (None, "us-east-1") else
                 {"CreateBucketConfiguration": {"LocationConstraint": region}})
        self._call("create the bucket", "", lambda: self._client.create_bucket(
            Bucket=self.bucket, **where))


class _Counted:
    """boto3's transfer callback, called with the bytes moved since its last call from the
    transfer's worker threads: summed under a lock into `progress(done, total)`."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.lock = threading.Lock()

    def __call__(self, moved: int) -> None:
        with self.lock:
            self.done += moved
            self.progress(self.done, self.total)
