"""The benchmark's vault: a realistic document-management history, built through the domain API.

Every event comes from a domain command run by the person who would run it: the admin creates
users, authors create and edit their own documents, reviewers start and move the workflows of
the documents they review (and now and then set such a document's status). Each transaction
(`vault.write(actor, reason)`) is one actor's session of up to `batch` commands.

The mix, by events: about 2% users, 30% documents created, 40% document updates and 28%
workflow transitions (starts and moves). Most users are viewers, as in a real DMS; the work is
done by a staff of about 1% authors and 0.5% reviewers of all users, so that each of them has
enough work for whole sessions. Everything is drawn from one seeded generator: the same
`--events` and `--seed` give the same commands (the UUIDs and times differ, as they would).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eventvault import log_read
from eventvault.domain import Commands
from eventvault.system import WORKFLOW_STATES
from eventvault.vault import Vault

SHARES = {"user": 0.02, "document": 0.30, "update": 0.40, "transition": 0.28}
# `--mix live` (issue 14): nearly every event creates an entity, so that 1M events leave ~1M
# live entities, the fold's memory at its largest for the log's length.
MIXES = {"history": SHARES,
         "live": {"user": 0.02, "document": 0.97, "update": 0.005, "transition": 0.005}}
AUTHOR_SHARE, REVIEWER_SHARE = 0.01, 0.005  # of all users
REVIEWER_UPDATES = 0.10  # share of document updates made by the document's reviewer
MOVE_SHARE = 0.8  # of a reviewer's transitions while they also have workflows to start
RECENT = 200  # an edit touches one of the author's last RECENT documents half of the time

FIRST = ("anna", "ben", "carla", "david", "elif", "felix", "greta", "hamid", "ines", "jonas",
         "karin", "lukas", "mara", "nils", "olga", "paul", "rosa", "sven", "tara", "yusuf")
LAST = ("schmidt", "meyer", "novak", "rossi", "garcia", "kowalski", "nguyen", "fischer",
        "weber", "jensen", "dubois", "silva", "berg", "kaya", "horvat", "larsen")
KINDS = ("Quality manual", "Supplier audit", "Onboarding guide", "Security policy",
         "Release notes", "Data retention policy", "Incident report", "Travel policy",
         "Budget plan", "Style guide", "Test protocol", "Maintenance schedule",
         "Risk assessment", "Meeting minutes", "Work instruction", "Training record")
SITES = ("Hamburg", "Leipzig", "Graz", "Lyon", "Porto", "Gdansk", "Malmo", "Bologna")
AUTHOR_STATUSES = ("draft", "in_review")
REVIEWER_STATUSES = ("in_review", "approved", "published", "archived")
NEXT_STATES: dict[str, tuple[str, ...]] = {name: targets
                                           for name, targets in WORKFLOW_STATES.items()}


@dataclass(frozen=True)
class Plan:
    """How many events of each kind a build of `events` events aims at."""

    events: int
    users: int
    documents: int
    updates: int
    transitions: int
    authors: int
    reviewers: int

    @classmethod
    def for_events(cls, events: int, shares: dict[str, float] = SHARES) -> Plan:
        users = max(8, round(events * shares["user"]))
        documents = round(events * shares["document"])
        updates = round(events * shares["update"])
        transitions = events - users - documents - updates
        return cls(events, users, documents, updates, transitions,
                   authors=max(4, round(users * AUTHOR_SHARE)),
                   reviewers=max(2, round(users * REVIEWER_SHARE)))


@dataclass
class Document:
    uuid: str
    author: str
    reviewer: str | None
    title: str
    status: str = "draft"
    revision: int = 1


@dataclass
class Workflow:
    uuid: str
    state: str = "draft"


@dataclass
class Reviewer:
    unstarted: list[Document] = field(default_factory=list)  # without a workflow yet
    reviewing: list[Document] = field(default_factory=list)
    active: list[Workflow] = field(default_factory=list)  # not in a final state


@dataclass
class Tally:
    """Events drawn so far, by kind."""

    user: int = 0
    document: int = 0
    update: int = 0
    transition: int = 0

    @property
    def events(self) -> int:
        return self.user + self.document + self.update + self.transition


@dataclass
class Timing:
    """Events appended, in how many transactions, in how many seconds of `vault.write()`
    (wall, and CPU of this process: SQLite works in it)."""

    events: int = 0
    transactions: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


Operation = Callable[[Commands], None]
Session = tuple[str, str, list[Operation]]  # actor, reason, one command each


class Workload:
    """Draws sessions (actor, reason, operations) that keep the plan's mix at every point."""

    def __init__(self, plan: Plan, seed: int) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.done = Tally()
        self.authors = [self._username(f"author{n:04d}") for n in range(plan.authors)]
        self.reviewers = [self._username(f"reviewer{n:04d}") for n in range(plan.reviewers)]
        self.viewers_left = plan.users - plan.authors - plan.reviewers
        self.documents: dict[str, list[Document]] = {name: [] for name in self.authors}
        self.review: dict[str, Reviewer] = {name: Reviewer() for name in self.reviewers}
        self.doc_number = 0

    # --- sessions --------------------------------------------------------------------------

    def staff_session(self) -> Session:
        """The admin creates the authors and reviewers before anyone can work."""
        operations = [self._add_user(name, "author") for name in self.authors]
        operations += [self._add_user(name, "reviewer") for name in self.reviewers]
        return "admin", "staffing", operations

    def next_session(self, size: int) -> Session | None:
        """The next actor's session of at most `size` commands, None when the plan is done."""
        left = self._left()
        if sum(left.values()) <= 0:
            return None
        size = min(size, sum(left.values()))
        progress = self.done.events / self.plan.events
        users_due = round(progress * self.plan.users) - self.done.user
        if left["user"] > 0 and (users_due >= min(size, left["user"]) or progress > 0.9):
            count = min(size, left["user"])
            return "admin", "onboarding", [self._add_user(self._viewer(), "viewer")
                                           for _ in range(count)]
        author_work = left["document"] + left["update"] * (1 - REVIEWER_UPDATES)
        reviewer_work = left["transition"] + left["update"] * REVIEWER_UPDATES
        draws = [self._author_session, self._reviewer_session]
        if self.rng.random() * (author_work + reviewer_work) < reviewer_work:
            draws.reverse()
        for draw in draws:  # the other role when the first has nothing it can do now
            session = draw(size, left)
            if session[2]:
                return session
        return None

    def _author_session(self, size: int, left: dict[str, int]) -> Session:
        writers = self.authors if left["document"] > 0 else [
            name for name in self.authors if self.documents[name]]
        if not writers:
            return "admin", "drafting", []
        author = self.rng.choice(writers)
        own = self.documents[author]
        operations: list[Operation] = []
        creates = left["document"]
        updates = round(left["update"] * (1 - REVIEWER_UPDATES))
        for _ in range(size):
            if creates <= 0 and (updates <= 0 or not own):
                break
            if own and updates > 0 and self.rng.random() * (creates + updates) < updates:
                operations.append(self._author_edit(self._pick(own)))
                updates -= 1
            else:
                operations.append(self._add_document(author))
                creates -= 1
        return author, "drafting", operations

    def _reviewer_session(self, size: int, left: dict[str, int]) -> Session:
        candidates = [n for n in self.reviewers
                      if self.review[n].unstarted or self.review[n].active]
        if not candidates:
            return "admin", "review cycle", []
        reviewer = self.rng.choice(candidates)
        work = self.review[reviewer]
        operations: list[Operation] = []
        transitions = left["transition"]
        updates = max(0, left["update"] - round(left["update"] * (1 - REVIEWER_UPDATES)))
        for _ in range(size):
            roll = self.rng.random() * (transitions + updates)
            if updates > 0 and work.reviewing and roll < updates:
                operations.append(self._reviewer_edit(self._pick(work.reviewing)))
                updates -= 1
            elif transitions > 0 and work.active and (not work.unstarted
                                                      or self.rng.random() < MOVE_SHARE):
                operations.append(self._move(work, self.rng.randrange(len(work.active))))
                transitions -= 1
            elif transitions > 0 and work.unstarted:
                operations.append(self._start(work, reviewer))
                transitions -= 1
            else:
                break
        return reviewer, "review cycle", operations

    def single_sessions(self, count: int) -> list[Session]:
        """`count` sessions of one command each (the one-at-a-time figure), same mix."""
        sessions = []
        for _ in range(count):
            session = self.next_session(1)
            if session is None:
                break
            sessions.append(session)
        return sessions

    # --- operations: each records exactly one event and updates the generator's view -----

    def _add_user(self, username: str, role: str) -> Operation:
        def run(commands: Commands) -> None:
            commands.add_user(username, role, f"{username}@example.com")
        self.done.user += 1
        return run

    def _add_document(self, author: str) -> Operation:
        self.doc_number += 1
        reviewer = self.rng.choice(self.reviewers) if self.rng.random() < 0.9 else None
        title = (f"{self.rng.choice(KINDS)} {self.rng.choice(SITES)} "
                 f"{2020 + self.rng.randrange(7)}-Q{self.rng.randrange(1, 5)} "
                 f"(DOC-{self.doc_number:07d})")
        # Known to the generator at once (later commands of this session may use it); its
        # UUID is filled in when the command runs, before any later command does.
        document = Document("", author, reviewer, title)
        self.documents[author].append(document)
        if reviewer is not None:
            self.review[reviewer].unstarted.append(document)
            self.review[reviewer].reviewing.append(document)
        self.done.document += 1

        def run(commands: Commands) -> None:
            document.uuid = commands.add_document(title, author, reviewer)
        return run

    def _author_edit(self, document: Document) -> Operation:
        changes = self._edit(document, AUTHOR_STATUSES, title_share=0.6)
        return self._update(document, changes)

    def _reviewer_edit(self, document: Document) -> Operation:
        return self._update(document, self._edit(document, REVIEWER_STATUSES, title_share=0.0))

    def _edit(self, document: Document, statuses: tuple[str, ...],
              title_share: float) -> dict[str, str]:
        choices = [s for s in statuses if s != document.status]
        if self.rng.random() < title_share or not choices:
            document.revision += 1
            document.title = f"{document.title.split(' (rev.')[0]} (rev. {document.revision})"
            return {"title": document.title}
        document.status = self.rng.choice(choices)
        return {"status": document.status}

    def _update(self, document: Document, changes: dict[str, str]) -> Operation:
        self.done.update += 1

        def run(commands: Commands) -> None:
            commands.update_document(document.uuid, changes)
        return run

    def _start(self, work: Reviewer, reviewer: str) -> Operation:
        document = work.unstarted.pop(self.rng.randrange(len(work.unstarted)))
        workflow = Workflow("")
        work.active.append(workflow)
        self.done.transition += 1

        def run(commands: Commands) -> None:
            workflow.uuid = commands.start_workflow(document.uuid, reviewer)
        return run

    def _move(self, work: Reviewer, index: int) -> Operation:
        workflow = work.active[index]
        targets = NEXT_STATES[workflow.state]
        state = "approved" if "approved" in targets and self.rng.random() < 0.7 else (
            self.rng.choice(targets))
        workflow.state = state
        if not NEXT_STATES[state]:
            work.active[index] = work.active[-1]
            work.active.pop()
        self.done.transition += 1

        def run(commands: Commands) -> None:
            commands.move_workflow(workflow.uuid, state)
        return run

    # --- helpers ---------------------------------------------------------------------------

    def _left(self) -> dict[str, int]:
        plan, done = self.plan, self.done
        return {"user": plan.users - done.user, "document": plan.documents - done.document,
                "update": plan.updates - done.update,
                "transition": plan.transitions - done.transition}

    def _pick(self, documents: list[Document]) -> Document:
        if len(documents) > RECENT and self.rng.random() < 0.5:
            return documents[-1 - self.rng.randrange(RECENT)]
        return self.rng.choice(documents)

    def _username(self, suffix: str) -> str:
        return f"{self.rng.choice(FIRST)}.{self.rng.choice(LAST)}.{suffix}"

    def _viewer(self) -> str:
        self.viewers_left -= 1
        return self._username(f"viewer{self.viewers_left:06d}")


@dataclass
class BuildResult:
    events: int  # events in the vault at the end, the init's system entities included
    drawn: Tally
    batched: Timing
    single: Timing
    batch: int


def build(url: str, events: int, *, batch: int, single: int, seed: int,
          progress: Callable[[int], None] | None = None, mix: str = "history") -> BuildResult:
    """Initialise a vault at `url` and fill it to about `events` events of `mix` (MIXES)."""
    vault = Vault(url)
    try:
        vault.init()
        system_events = _head_seq(vault)
        plan = Plan.for_events(events - system_events, MIXES[mix])
        workload = Workload(plan, seed)
        batched, single_timing = Timing(), Timing()
        _run(vault, workload.staff_session(), batched)
        reserve = min(single, plan.events // 10)
        while workload.done.events < plan.events - reserve:
            size = min(batch, plan.events - reserve - workload.done.events)
            session = workload.next_session(size)
            if session is None:
                break
            _run(vault, session, batched)
            if progress is not None:
                progress(system_events + workload.done.events)
        for session in workload.single_sessions(reserve):
            _run(vault, session, single_timing)
        return BuildResult(_head_seq(vault), workload.done, batched, single_timing, batch)
    finally:
        vault.close()


def _run(vault: Vault, session: Session, timing: Timing) -> None:
    actor, reason, operations = session
    if not operations:
        return
    cpu_started = time.process_time()
    started = time.perf_counter()
    with vault.write(actor, reason) as commands:
        first = commands.head.seq
        for operation in operations:
            operation(commands)
        recorded = commands.head.seq - first
    timing.seconds += time.perf_counter() - started
    timing.cpu_seconds += time.process_time() - cpu_started
    if recorded != len(operations):
        raise RuntimeError(f"{actor}: {len(operations)} commands recorded {recorded} events; "
                           "the workload must record exactly one event per command")
    timing.transactions += 1
    timing.events += recorded


def _head_seq(vault: Vault) -> int:
    with vault.reading() as connection:
        return log_read.read_head(connection).seq


def measure(url: str, events: int, batch: int, seed: int = 6) -> dict[str, object]:
    """The append phase on its own (bench/hotspots.py profiles it): build, report timings."""
    built = build(url, events, batch=batch, single=0, seed=seed)
    return {"seconds": built.batched.seconds, "cpu_seconds": built.batched.cpu_seconds,
            "events": built.batched.events,
            "transactions": built.batched.transactions}
