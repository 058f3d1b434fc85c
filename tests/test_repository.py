"""Package repositories: one contract suite run against a directory, a moto S3 server and a
SeaweedFS server (all real, on 127.0.0.1), then the failure paths on stores that fail once,
fail always or garble what they return, and retention, check and crash safety."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ok, run_cli
from repo_stores import moto_endpoint, seaweedfs_endpoint  # noqa: F401 - fixtures

from eventvault.errors import EventVaultError, PackageError
from eventvault.repo.directory import DirectoryStore
from eventvault.repo.locations import open_store
from eventvault.repo.repository import INDEX, PACKAGES, Repository
from eventvault.repo.store import ObjectMissing, RetryingStore, StoreError
from eventvault.repo.transfer import repository_packages

PASSPHRASE = "correct horse battery staple"
CHEAP = ("--scrypt-log-n", "12")  # scrypt's cost is for attackers; the tests open keys often


def s3_environment(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(params=["directory", "moto", "seaweedfs"])
def location(request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh repository location on each kind of store in turn."""
    if request.param == "directory":
        return str(tmp_path / "repository")
    endpoint = request.getfixturevalue(f"{request.param}_endpoint")
    s3_environment(monkeypatch, endpoint)
    open_store("s3://eventvault-tests/").prepare()
    return f"s3://eventvault-tests/{uuid.uuid4().hex[:12]}"


def listed(location: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in ok("repo", "list", location, "--json").lines]


# --- the contract: the same for every store ------------------------------------------------

class TestStoreContract:
    def test_objects_round_trip(self, location: str, tmp_path: Path) -> None:
        store = open_store(location)
        store.prepare()
        store.put_bytes("a/one", b"1")
        store.put_bytes("b/two", b"22")
        big = tmp_path / "big"
        big.write_bytes(os.urandom(9 << 20))  # past the multipart threshold on S3
        store.put_file("a/big", big)
        assert [(i.name, i.size) for i in store.list("a/")] == [("a/big", 9 << 20), ("a/one", 1)]
        assert store.get_bytes("b/two") == b"22"
        store.get_file("a/big", tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == big.read_bytes()
        with pytest.raises(FileExistsError):  # a download never overwrites a file
            store.get_file("a/one", tmp_path / "back")
        store.delete("a/one")
        store.delete("a/one")  # deleting what is gone is not an error
        with pytest.raises(ObjectMissing):
            store.get_bytes("a/one")
        with pytest.raises(ObjectMissing):
            store.get_file("a/one", tmp_path / "missing")
        assert [i.name for i in store.list("")] == ["a/big", "b/two"]

    def test_transfers_tell_their_progress_to_the_last_byte(self, location: str,
                                                            tmp_path: Path) -> None:
        store = open_store(location)
        store.prepare()
        big = tmp_path / "big"
        big.write_bytes(os.urandom(9 << 20))  # several parts on S3, several chunks elsewhere
        sent: list[tuple[int, int]] = []
        received: list[tuple[int, int]] = []
        store.put_file("big", big, lambda done, total: sent.append((done, total)))
        store.get_file("big", tmp_path / "back", lambda done, total: received.append((done, total)))
        for told in (sent, received):
            done = [seen for seen, _ in told]
            assert len(told) > 1 and done == sorted(done), told
            assert told[-1] == (9 << 20, 9 << 20) and {t for _, t in told} == {9 << 20}
        assert (tmp_path / "back").read_bytes() == big.read_bytes()

    def test_the_story_encrypted(self, location: str, vault: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
        """snapshot, increments, forget, check, then replay a point in time into a new vault
        after the original vault file is gone."""
        monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
        ok("repo", "init", location, "--encrypt", *CHEAP)
        first = ok("snapshot", "--repo", location, db=vault)
        assert "(full)" in first.out
        ok("user", "add", "ines", "--role", "author", db=vault)
        ok("snapshot", "--repo", location, db=vault)
        point = run_cli("status", "--json", db=vault)
        head_at_point = json.loads(point.out)
        middle = listed(location)[-1]["last_time"]
        ok("user", "add", "jon", db=vault)
        third = ok("snapshot", "--repo", location, db=vault)
        assert "increment on seq" in third.out
        packages = listed(location)
        assert [p["full"] for p in packages] == [True, False, False]
        assert len({p["chain"] for p in packages}) == 1

        forget = ok("repo", "forget", location, "--keep-last", "1")
        assert "needed by" in forget.out and "removed 0 of 3" in forget.out
        ok("snapshot", "--repo", location, "--full", db=vault)
        forget = ok("repo", "forget", location, "--keep-last", "1")
        assert "removed 3 of 4" in forget.out
        assert [p["full"] for p in listed(location)] == [True]
        ok("user", "add", "kim", db=vault)
        ok("snapshot", "--repo", location, db=vault)
        assert "OK" in ok("repo", "check", location, "--read-data").out

        Path(vault.removeprefix("sqlite:///")).unlink()  # the vault's machine is gone
        fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
        iso = __import__("eventvault.events", fromlist=["us_to_iso"]).us_to_iso(middle)
        restored = ok("replay", "--repo", location, "--at", iso, db=fresh)
        assert f"to seq {head_at_point['head_seq']}" in restored.out
        users = [json.loads(line)["fields"].get("username") for line in
                 ok("export", db=fresh).lines if '"type":"user"' in line]
        assert "ines" in users and "jon" not in users and "kim" not in users
        latest = f"sqlite:///{tmp_path / 'latest.db'}"
        ok("replay", "--repo", location, db=latest)
        users = ok("export", db=latest).out
        assert '"username":"kim"' in users

    def test_nothing_personal_is_readable_without_the_key(
            self, location: str, vault: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
        ok("repo", "init", location, "--encrypt", *CHEAP)
        ok("user", "add", "secretive-username", db=vault)
        ok("snapshot", "--repo", location, db=vault)
        store = open_store(location)
        for info in store.list(""):
            target = tmp_path / uuid.uuid4().hex
            store.get_file(info.name, target)
            data = target.read_bytes()
            assert b"secretive-username" not in data and b"Quarterly" not in data, info.name
            assert b"vault_id" not in data

    def test_wrong_or_missing_passphrase_is_one_line(
            self, location: str, vault: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
        ok("repo", "init", location, "--encrypt", *CHEAP)
        ok("snapshot", "--repo", location, db=vault)
        monkeypatch.setenv("EVENTVAULT_PASSPHRASE", "not it")
        for command in (["repo", "list", location], ["snapshot", "--repo", location],
                        ["replay", "--repo", location]):
            result = run_cli(*command, db=vault)
            assert result.code == 1 and result.err.startswith("eventvault: wrong passphrase")
            assert len(result.err.splitlines()) == 1
        monkeypatch.delenv("EVENTVAULT_PASSPHRASE")
        result = run_cli("repo", "list", location)
        assert result.code == 1 and "is encrypted: give its passphrase" in result.err

    def test_an_interrupted_snapshot_leaves_nothing_taken(
            self, location: str, vault: str, tmp_path: Path) -> None:
        ok("repo", "init", location)
        ok("snapshot", "--repo", location, db=vault)
        ok("user", "add", "late", db=vault)
        # Stopped after the package object, before its index object: what a crash leaves.
        crashing = IndexFails(open_store(location))
        repository = Repository.open(crashing)
        package = tmp_path / "increment.evpkg"
        ok("snapshot", "-o", str(package), "--since", str(self._first(location, tmp_path)),
           db=vault)
        with pytest.raises(StoreError):
            repository.add(package)
        assert len(open_store(location).list(PACKAGES)) == 2
        assert len(listed(location)) == 1
        check = ok("repo", "check", location)
        assert "has no index object" in check.out
        fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
        ok("replay", "--repo", location, db=fresh)
        assert '"username":"late"' not in ok("export", db=fresh).out

    @staticmethod
    def _first(location: str, tmp_path: Path) -> Path:
        repository = Repository.open(location)
        target = tmp_path / "first"
        target.mkdir()
        return repository.download(repository.packages()[0], target)

    def test_single_files_to_and_from_the_location(
            self, location: str, vault: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        if not location.startswith("s3://"):
            pytest.skip("single remote files are an S3 feature")
        monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
        single = f"{location}/backup.evpkg"
        wrote = ok("snapshot", "-o", single, "--encrypt", db=vault)
        assert "encrypted" in wrote.out
        fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
        ok("replay", single, db=fresh)
        assert ok("status", "--json", db=fresh).out
        missing = run_cli("replay", f"{location}/nothing.evpkg", db=fresh)
        assert missing.code == 2 and "does not exist" in missing.err


class IndexFails:
    """A store that dies when a package is being committed (its index object written)."""

    def __init__(self, store: object) -> None:
        self.inner = store
        self.location = store.location  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def put_bytes(self, name: str, data: bytes) -> None:
        if name.startswith(INDEX):
            raise StoreError(f"{self.location}: connection lost")
        self.inner.put_bytes(name, data)  # type: ignore[attr-defined]


# --- stores that fail (wrappers around a real directory store) ------------------------------

class Failing:
    """Fails each request `times` times before passing it on (-1: always)."""

    def __init__(self, store: DirectoryStore, times: int) -> None:
        self.inner, self.location, self.times = store, store.location, times
        self.failures: dict[str, int] = {}
        self.calls = 0

    def __getattr__(self, method: str) -> Callable[..., object]:
        def call(*args: object) -> object:
            key = f"{method}{args[:1]}"
            self.calls += 1
            if self.times < 0 or self.failures.get(key, 0) < self.times:
                self.failures[key] = self.failures.get(key, 0) + 1
                raise StoreError(f"{self.location}: 503 Slow Down")
            return getattr(self.inner, method)(*args)

        return call


class Garbling:
    """Returns every package object with one byte changed."""

    def __init__(self, store: DirectoryStore) -> None:
        self.inner, self.location = store, store.location

    def __getattr__(self, method: str) -> object:
        return getattr(self.inner, method)

    def get_file(self, name: str, target: str | os.PathLike[str], progress: object = None
                 ) -> None:
        self.inner.get_file(name, target)
        data = bytearray(Path(target).read_bytes())
        data[len(data) // 2] ^= 0x01
        Path(target).write_bytes(bytes(data))


@pytest.fixture
def directory_repository(tmp_path: Path, vault: str) -> tuple[Path, Path]:
    """A directory repository holding a full package and an increment, and the package
    files as written."""
    location = tmp_path / "repository"
    ok("repo", "init", str(location))
    ok("snapshot", "--repo", str(location), db=vault)
    ok("user", "add", "ines", db=vault)
    ok("snapshot", "--repo", str(location), db=vault)
    return location, tmp_path


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_store_that_fails_once_is_retried(tmp_path: Path, vault: str, encrypted: bool) -> None:
    failing = Failing(DirectoryStore(tmp_path / "r"), times=1)
    store = RetryingStore(failing, pauses=(0, 0))  # type: ignore[arg-type]
    repository = Repository.init(store, encrypt=encrypted, passphrase=PASSPHRASE, scrypt_n=1 << 10)
    package = tmp_path / "p.evpkg"
    ok("snapshot", "-o", str(package), db=vault)
    info = repository.add(package)
    assert [p.name for p in Repository.open(store, PASSPHRASE).packages()] == [info.name]
    with repository_packages(repository, None, None, None) as local:
        assert Path(local[0]).read_bytes() == package.read_bytes()
    assert failing.failures and all(n == 1 for n in failing.failures.values())


def test_a_store_that_always_fails_is_one_error_and_nothing_half_done(
        tmp_path: Path, vault: str) -> None:
    good = DirectoryStore(tmp_path / "r")
    Repository.init(good, encrypt=False, passphrase=None)
    failing = RetryingStore(Failing(good, times=-1), pauses=(0, 0))  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="503 Slow Down"):
        Repository.open(failing)
    package = tmp_path / "p.evpkg"
    ok("snapshot", "-o", str(package), db=vault)
    repository = Repository.open(good)
    repository.store = failing  # type: ignore[assignment]
    with pytest.raises(StoreError):
        repository.add(package)
    assert good.list(PACKAGES) == [] and good.list(INDEX) == []
    assert list((tmp_path / "r").rglob("*.partial")) == []


def test_a_store_returning_garbled_data_is_refused(directory_repository: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    location, _ = directory_repository
    repository = Repository.open(Garbling(DirectoryStore(location)))  # type: ignore[arg-type]
    with pytest.raises(PackageError, match="content does not match its name"), \
            repository_packages(repository, None, None, None):
        pass
    assert not list(Path("/tmp").glob("eventvault-*/*.download"))


def test_repo_check_read_data_finds_a_damaged_package(
        directory_repository: tuple[Path, Path]) -> None:
    location, _ = directory_repository
    assert run_cli("repo", "check", str(location), "--read-data").code == 0
    victim = sorted((location / "packages").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    victim.write_bytes(bytes(data))
    assert run_cli("repo", "check", str(location)).code == 0  # the structure is still sound
    for flags in (["--read-data"], ["--read-data-subset", "100%"]):
        result = run_cli("repo", "check", str(location), *flags)
        assert result.code == 1, flags
        assert f"FAIL package {victim.stem[:12]}" in result.err
        assert "content does not match its name" in result.err


def test_repo_check_finds_a_broken_chain(directory_repository: tuple[Path, Path]) -> None:
    location, _ = directory_repository
    full = next(p for p in listed(str(location)) if p["full"])
    (location / "index" / f"{full['name']}.json").unlink()
    result = run_cli("repo", "check", str(location))
    assert result.code == 1 and "its chain is broken" in result.err
    assert "1 problem" in result.err


def test_forget_dry_run_removes_nothing_and_says_why(
        directory_repository: tuple[Path, Path]) -> None:
    location, _ = directory_repository
    before = sorted(p.name for p in location.rglob("*") if p.is_file())
    result = ok("repo", "forget", str(location), "--keep-last", "1", "--dry-run")
    assert "needed by" in result.out and "would remove 0 of 2" in result.out
    assert sorted(p.name for p in location.rglob("*") if p.is_file()) == before
    refused = run_cli("repo", "forget", str(location))
    assert refused.code == 2 and "--keep-" in refused.err


def test_key_add_and_passwd(tmp_path: Path, vault: str, monkeypatch: pytest.MonkeyPatch) -> None:
    location = str(tmp_path / "r")
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
    ok("repo", "init", location, "--encrypt", *CHEAP)
    ok("snapshot", "--repo", location, db=vault)
    sealed = sorted((tmp_path / "r" / "packages").iterdir())[0].read_bytes()
    monkeypatch.setenv("EVENTVAULT_NEW_PASSPHRASE", "second")
    ok("repo", "key", "add", location)
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", "second")
    assert len(ok("repo", "key", "list", location).lines) == 2
    passfile = tmp_path / "pass"
    passfile.write_text("third\n")
    ok("repo", "key", "passwd", location, "--new-passphrase-file", str(passfile))
    assert run_cli("repo", "list", location).code == 1  # "second" is gone
    assert ok("repo", "list", location, "--passphrase-file", str(passfile)).out
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)  # the first one still works
    assert ok("repo", "list", location).out
    # The data was not re-encrypted.
    assert sorted((tmp_path / "r" / "packages").iterdir())[0].read_bytes() == sealed


def test_replay_repo_at_a_seq_picks_the_chain_that_covers_it(
        directory_repository: tuple[Path, Path], tmp_path: Path) -> None:
    location, _ = directory_repository
    packages = listed(str(location))
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = ok("replay", "--repo", str(location), "--seq", str(packages[0]["head_seq"]),
                db=fresh)
    assert f"to seq {packages[0]['head_seq']}" in result.out
    beyond = run_cli("replay", "--repo", str(location), "--seq", "100000", db=fresh)
    assert beyond.code == 2 and "outside the repository's events" in beyond.err


def test_errors_are_one_line(tmp_path: Path, vault: str) -> None:
    for command in (["repo", "list", str(tmp_path / "none")],
                    ["replay", "--repo", str(tmp_path / "none")],
                    ["snapshot", "--repo", str(tmp_path / "none")]):
        result = run_cli(*command, db=vault)
        assert result.code == 1 and "is not a repository" in result.err, command
        assert len(result.err.splitlines()) == 1
    assert run_cli("snapshot", db=vault).code == 2
    assert run_cli("replay", db=vault).code == 2


def test_library_errors_are_eventvault_errors() -> None:
    assert issubclass(StoreError, EventVaultError)
