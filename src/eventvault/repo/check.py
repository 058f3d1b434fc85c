"""`repo check`: the repository's structure, chains and, when asked, every byte of its data.

Without data reading: each index object decodes, its package object exists with the recorded
size, and each package's chain reaches a full package. With `read_data` (a fraction of the
packages, 1.0 for all): each chosen package is downloaded, its SHA-256 compared with its
name, decrypted, opened and read to its end (every frame's checksum and the hash chain), and
its header and footer compared with its index object. Each problem is one line.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from eventvault.errors import EventVaultError
from eventvault.package import PackageReader
from eventvault.progress import Progress
from eventvault.repo.chains import chains
from eventvault.repo.repository import INDEX, PACKAGES, PackageInfo, Repository, private_directory


@dataclass
class CheckReport:
    packages: int = 0
    read: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"ok": not self.problems, "packages": self.packages, "read": self.read,
                "problems": list(self.problems), "notes": list(self.notes)}


def check(repository: Repository, read_data: float = 0.0,
          progress: Progress | None = None) -> CheckReport:
    """`progress(packages read, packages to read)` after each package read."""
    report = CheckReport()
    stored = {info.name: info.size for info in repository.store.list(PACKAGES)}
    infos: list[PackageInfo] = []
    for item in repository.store.list(INDEX):
        try:
            infos.append(repository.read_index(item.name))
        except EventVaultError as exc:
            report.problems.append(str(exc))
    report.packages = len(infos)
    indexed = {info.object_name for info in infos}
    for info in infos:
        size = stored.get(info.object_name)
        if size is None:
            report.problems.append(f"package {info.name[:12]} (seq {info.base_seq + 1}-"
                                   f"{info.head_seq}) is missing its data object")
        elif size != info.size:
            report.problems.append(f"package {info.name[:12]} has {size} bytes, its index says "
                                   f"{info.size}")
    for name, chain in chains(infos).items():
        if chain is None:
            info = next(i for i in infos if i.name == name)
            report.problems.append(
                f"package {name[:12]} (seq {info.base_seq + 1}-{info.head_seq}) continues seq "
                f"{info.base_seq} but no package of its chain ends there: its chain is broken")
    for object_name in sorted(set(stored) - indexed):
        report.notes.append(f"{object_name} has no index object (an interrupted snapshot?); "
                            "nothing uses it")
    if read_data > 0:
        present = sorted((i for i in infos if i.object_name in stored), key=lambda i: i.name)
        count = min(len(present), math.ceil(len(present) * read_data))
        chosen = random.sample(present, count) if count < len(present) else present
        with private_directory() as work:
            for info in chosen:
                problem = _read(repository, info, work)
                report.read += 1
                if progress:
                    progress(report.read, len(chosen))
                if problem:
                    report.problems.append(problem)
    return report


def _read(repository: Repository, info: PackageInfo, work: Path) -> str | None:
    try:
        path = repository.download(info, work)
        try:
            reader = PackageReader(path)
            for _ in reader.entries():
                pass
            header, footer = reader.header, reader.footer
            if (header.vault_id, header.base_seq, header.base_hash.hex(), footer.head_seq,
                    footer.head_hash.hex()) != (info.vault_id, info.base_seq, info.base_hash,
                                                info.head_seq, info.head_hash):
                return f"package {info.name[:12]}: its content does not match its index object"
        finally:
            path.unlink(missing_ok=True)
    except EventVaultError as exc:
        return f"package {info.name[:12]}: {exc}"
    return None
