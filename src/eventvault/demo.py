"""Demo data: the figures of the story (10 users, 5 documents, 4 workflows), or N times more.

Everything goes through the domain commands as the people who would really do it: authors
write their documents, reviewers move workflows, the admin records backups and restores.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from eventvault.errors import ValidationError
from eventvault.vault import Vault

TOPICS = (
    "Quality manual", "Supplier audit", "Onboarding guide", "Security policy", "Release notes",
    "Data retention policy", "Incident report", "Travel policy", "Budget plan", "Style guide",
)
# One workflow per target path, so the story's four workflows sit in four different states.
PATHS = (
    (),
    ("in_review",),
    ("in_review", "approved"),
    ("in_review", "approved", "published"),
)


def run_demo(vault: Vault, scale: int = 1,
             progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """The story's data, `scale` times; `progress(stories done, scale)` after each."""
    if scale < 1:
        raise ValidationError("--scale must be at least 1")
    counts = vault.status().counts
    if counts["document"] or counts["workflow"]:
        raise ValidationError(
            f"demo needs a vault without documents, this one has {counts['document']} "
            f"documents and {counts['workflow']} workflows; run `eventvault reinit --yes` first"
        )
    rng = random.Random(20261129)
    for batch in range(scale):
        _one_story(vault, rng, "" if scale == 1 else f"_{batch:05d}")
        if progress:
            progress(batch + 1, scale)
    with vault.write("admin", reason="nightly backup") as commands:
        for config in ("daily_full", "hourly_incremental", "audit_log"):
            commands.add_backup_job(config, note=f"{config} run")
    with vault.write("admin", reason="restore test") as commands:
        job = commands.add_backup_job("pre_reinit", note="before restore test")
        commands.add_restore_job("admin", job, note="quarterly restore drill")
    return vault.status().counts


def _one_story(vault: Vault, rng: random.Random, suffix: str) -> None:
    authors = [f"author{n:02d}{suffix}" for n in range(1, 5)]
    reviewers = [f"reviewer{n:02d}{suffix}" for n in range(1, 4)]
    with vault.write("admin", reason="staffing") as commands:
        for name in authors:
            commands.add_user(name, "author", f"{name}@example.com")
        for name in reviewers:
            commands.add_user(name, "reviewer", f"{name}@example.com")
        commands.add_user(f"viewer01{suffix}", "viewer", f"viewer01{suffix}@example.com")
    documents = []
    for number in range(5):
        author = authors[number % len(authors)]
        reviewer = reviewers[number % len(reviewers)]
        with vault.write(author, reason="new document") as commands:
            title = f"{rng.choice(TOPICS)} {rng.randint(1, 99)}"
            document = commands.add_document(title, author, reviewer)
            commands.update_document(document, {"title": f"{title} (rev. 2)"})
        documents.append((document, reviewer))
    for (document, reviewer), path in zip(documents, PATHS, strict=False):
        with vault.write(reviewer, reason="review cycle") as commands:
            workflow = commands.start_workflow(document, reviewer)
            for state in path:
                commands.move_workflow(workflow, state)
        if path and path[-1] == "published":
            with vault.write(reviewer, reason="published") as commands:
                commands.update_document(document, {"status": "published"})
