"""Everything the story's data says, read through Django's ORM, as JSON without keys."""

from __future__ import annotations

import json

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from dms.models import (
    BackupConfig,
    BackupJob,
    Document,
    Placeholder,
    RestoreJob,
    Workflow,
    WorkflowState,
)


def _name(user: User | None) -> str | None:
    return None if user is None else user.username


class Command(BaseCommand):
    help = "Print the database's content (no primary keys) as JSON."

    def handle(self, *args: object, **options: object) -> None:
        story = {
            "counts": {model.__name__: model.objects.count() for model in (
                User, WorkflowState, Document, Workflow, Placeholder, BackupConfig,
                BackupJob, RestoreJob)},
            "users": sorted([u.username, u.email, u.first_name, u.is_superuser, u.is_staff,
                             u.password, u.date_joined.isoformat()] for u in User.objects.all()),
            "documents": sorted([d.title, d.body, d.status, _name(d.author), _name(d.reviewer),
                                 d.created_at.isoformat(), d.due and d.due.isoformat(), d.pages,
                                 str(d.fee), d.signature and bytes(d.signature).hex()]
                                for d in Document.objects.all()),
            "workflows": sorted([w.document.title, w.current_state.name,
                                 w.started_at.isoformat(), w.note]
                                for w in Workflow.objects.all()),
            "placeholders": sorted([p.key, p.value, p.description]
                                   for p in Placeholder.objects.all()),
            "configs": sorted([c.name, c.schedule, c.retention_days, c.enabled,
                               str(c.max_size_gb), c.weight] for c in BackupConfig.objects.all()),
            "jobs": sorted([j.config.name, j.started_at.isoformat(),
                            j.finished_at and j.finished_at.isoformat(), j.succeeded,
                            j.size_bytes] for j in BackupJob.objects.all()),
            "restores": sorted([r.requested_by.username, r.backup_job.started_at.isoformat(),
                                r.requested_at.isoformat(), r.outcome]
                               for r in RestoreJob.objects.all()),
        }
        self.stdout.write(json.dumps(story, indent=1))
